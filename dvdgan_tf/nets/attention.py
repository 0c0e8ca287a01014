"""SAGAN-style self-attention over video feature maps: full (all T*H*W positions) and separable (section 3.2).

Videos are [B, T, H, W, C]; axis 1 is time, 2 height, 3 width. An attention layer attends jointly over a set of
axes; the remaining axes are folded into the batch. The full layer attends over (1, 2, 3): its attention map has
(T*H*W)^2 entries per sample. The separable layer is three residual attention layers in a row, over height, then
width, then time, with maps of H*H*W*T, W*W*H*T and T*T*H*W entries per sample.
"""
import keras
import tensorflow as tf

from dvdgan_tf.nets.layer_tracking import track
from dvdgan_tf.nets.spectral_norm import SNDense

TIME, HEIGHT, WIDTH = 1, 2, 3


class SelfAttention(keras.layers.Layer):
    """Residual self-attention over ``axes`` of a [B, T, H, W, C] tensor: x + gamma * o(attend(x)).

    Projections are spectrally normalised 1x1 convolutions: theta and phi to C/8, g to C/2, o back to C.
    gamma is a learned scalar initialised to 0, so the layer starts as the identity. The softmax runs in float32.
    """

    def __init__(self, axes=(TIME, HEIGHT, WIDTH), kernel_initializer="orthogonal", **kwargs):
        super().__init__(**kwargs)
        axes = tuple(sorted(axes))
        if not axes or any(a not in (TIME, HEIGHT, WIDTH) for a in axes):
            raise ValueError(f"attention axes must be a non-empty subset of (1, 2, 3), got {axes}.")
        self.axes = axes
        self.kernel_initializer = kernel_initializer

    def build(self, input_shape):
        if len(input_shape) != 5:
            raise ValueError(f"SelfAttention expects [B, T, H, W, C], got shape {tuple(input_shape)}.")
        c = int(input_shape[-1])
        if c < 8:
            raise ValueError(f"SelfAttention needs at least 8 channels, got {c}.")
        init = self.kernel_initializer
        self.theta = SNDense(c // 8, use_bias=False, kernel_initializer=init, name="theta")
        self.phi = SNDense(c // 8, use_bias=False, kernel_initializer=init, name="phi")
        self.g = SNDense(c // 2, use_bias=False, kernel_initializer=init, name="g")
        self.o = SNDense(c, use_bias=False, kernel_initializer=init, name="o")
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="zeros")

    def _fold(self, x):
        """[B, T, H, W, C] -> [B * prod(other axes), prod(attended axes), C], and the inverse function."""
        others = [a for a in (TIME, HEIGHT, WIDTH) if a not in self.axes]
        perm = [0] + others + list(self.axes) + [4]
        inverse = [perm.index(i) for i in range(5)]
        moved = tf.transpose(x, perm)
        moved_shape = tf.shape(moved)
        length = tf.reduce_prod(moved_shape[1 + len(others):4])

        def unfold(y):
            y = tf.reshape(y, tf.concat([moved_shape[:4], tf.shape(y)[-1:]], 0))
            return tf.transpose(y, inverse)

        return tf.reshape(moved, [-1, length, x.shape[-1]]), unfold

    def call(self, x, training=False, return_attention=False):
        folded, unfold = self._fold(x)
        q = self.theta(folded, training=training)
        k = self.phi(folded, training=training)
        v = self.g(folded, training=training)
        logits = tf.matmul(tf.cast(q, tf.float32), tf.cast(k, tf.float32), transpose_b=True)
        attention = tf.nn.softmax(logits, axis=-1)  # [N, L, L]
        attended = tf.matmul(tf.cast(attention, v.dtype), v)
        out = x + tf.cast(self.gamma, x.dtype) * unfold(self.o(attended, training=training))
        return (out, [attention]) if return_attention else out


class SeparableSelfAttention(keras.layers.Layer):
    """Height, then width, then time attention, each a residual SelfAttention over one axis.

    call(x, training, return_attention): x [B, T, H, W, C] -> same shape; with return_attention also the three
    attention maps, shaped [B*T*W, H, H], [B*T*H, W, W] and [B*H*W, T, T].
    """

    def __init__(self, kernel_initializer="orthogonal", **kwargs):
        super().__init__(**kwargs)
        self.stages = [track(self, SelfAttention((axis,), kernel_initializer=kernel_initializer, name=name))
                       for axis, name in ((HEIGHT, "height"), (WIDTH, "width"), (TIME, "time"))]

    def build(self, input_shape):
        for stage in self.stages:
            stage.build(input_shape)

    def call(self, x, training=False, return_attention=False):
        maps = []
        for stage in self.stages:
            x, attention = stage(x, training=training, return_attention=True)
            maps += attention
        return (x, maps) if return_attention else x


def make_attention(kind, kernel_initializer="orthogonal", name=None):
    """Builds the attention layer named by ``kind``: 'separable' or 'full'."""
    if kind == "separable":
        return SeparableSelfAttention(kernel_initializer=kernel_initializer, name=name)
    if kind == "full":
        return SelfAttention(kernel_initializer=kernel_initializer, name=name)
    raise ValueError(f"Unknown attention kind {kind!r}: use 'separable' or 'full'.")
