"""Checks of network settings and inputs that turn wrong values, shapes and labels into messages naming the
problem and the fix."""
import numbers

import tensorflow as tf

from dvdgan_tf.errors import setting_error

# Minimum of each integer setting of G, D_S and D_T (gin names); tuples hold positive integers.
_INT_MINIMUM = {"num_classes": 1, "num_frames": 1, "resolution": 1, "ch": 1, "z_dim": 1, "embed_dim": 1, "k": 1,
                "downsample": 1, "num_3d_blocks": 0, "seed": 0}
_INT_TUPLES = ("channel_multipliers", "attention_resolutions")


def is_integer(value):
    """True for a Python or NumPy integer, not a bool (True would pass as 1 otherwise)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_settings(gin_name, **settings):
    """Raises ConfigError (one line naming ``<gin_name>.<setting>``, the value and the fix) for an integer setting
    that is not an integer at or above its minimum, or a tuple setting that is not a tuple of positive integers
    (``channel_multipliers`` may be None)."""
    for name, value in settings.items():
        if name in _INT_MINIMUM and (not is_integer(value) or value < _INT_MINIMUM[name]):
            raise setting_error(f"{gin_name}.{name}", value, f"an integer >= {_INT_MINIMUM[name]}")
        if name in _INT_TUPLES and not (value is None and name == "channel_multipliers") and (
                isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or
                not all(is_integer(v) and v >= 1 for v in value)):
            raise setting_error(f"{gin_name}.{name}", value, "a tuple of positive integers")


def check_video(video, num_frames, resolution, name):
    """Raises ValueError unless ``video`` is [B, num_frames, resolution, resolution, 3] (static dims checked)."""
    shape = tuple(video.shape)
    expected = (num_frames, resolution, resolution, 3)
    if len(shape) != 5 or any(s is not None and s != e for s, e in zip(shape[1:], expected)):
        raise ValueError(
            f"{name} expects videos shaped [batch, {num_frames}, {resolution}, {resolution}, 3] "
            f"(batch, frames, height, width, RGB) but got shape {list(shape)}. Resize or re-sample the clips, "
            f"or set the config's frame count and resolution (NUM_FRAMES, RESOLUTION) to match the data.")


def check_labels(labels, num_classes, name):
    """Raises (eagerly ValueError, in graphs InvalidArgumentError) unless labels are ints in [0, num_classes).

    Args:
      labels: [B] integer tensor.
    Returns:
      labels as int32. Under XLA the graph-mode assertion is dropped by the compiler.
    """
    if labels.dtype.is_floating:
        raise ValueError(f"{name}: labels must be integer class indices, got dtype {labels.dtype.name}.")
    labels = tf.cast(labels, tf.int32)
    message = (f"{name}: a label is outside the class range [0, {num_classes}). Check the dataset's class "
               f"index file, or set NUM_CLASSES in the config to the number of classes.")
    if tf.executing_eagerly():
        bad = tf.logical_or(labels < 0, labels >= num_classes).numpy()
        if bad.any():
            raise ValueError(f"{message} Offending labels: {sorted(set(labels.numpy()[bad].tolist()))}.")
        return labels
    with tf.control_dependencies([
            tf.debugging.assert_greater_equal(labels, 0, message=message),
            tf.debugging.assert_less(labels, num_classes, message=message)]):
        return tf.identity(labels)
