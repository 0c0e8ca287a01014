"""Checks of network inputs that turn wrong shapes and labels into messages naming the problem and the fix."""
import tensorflow as tf


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
