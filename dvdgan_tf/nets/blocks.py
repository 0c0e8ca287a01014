"""BigGAN residual blocks for videos [B, T, H, W, C]: the generator's up-block and 2-D/3-D discriminator blocks."""
import keras
import tensorflow as tf

from dvdgan_tf.nets.normalization import ConditionalBatchNorm
from dvdgan_tf.nets.spectral_norm import SNConv


def upsample2x(x, method="bilinear"):
    """Doubles H and W of every frame. x [B, T, H, W, C] -> [B, T, 2H, 2W, C]. method: 'bilinear' or 'nearest'."""
    b, t, h, w, c = tf.unstack(tf.shape(x))
    frames = tf.reshape(x, [b * t, h, w, c])
    frames = tf.image.resize(frames, [2 * h, 2 * w], method=method)
    return tf.cast(tf.reshape(frames, [b, t, 2 * h, 2 * w, c]), x.dtype)


def avgpool(x, factor=2, time=False):
    """factor x factor spatial average pooling of [B, T, H, W, C]; with time=True T is pooled by factor too."""
    window = [1, factor if time else 1, factor, factor, 1]
    return tf.nn.avg_pool3d(x, window, window, "VALID")


class GBlock(keras.layers.Layer):
    """BigGAN generator block; frames are processed independently (cBN statistics are per frame).

    cBN -> ReLU -> (x2 upsample) -> 3x3 conv -> cBN -> ReLU -> 3x3 conv, plus a skip path
    (x2 upsample) -> 1x1 conv (the 1x1 conv only when channels change).
    call(x, cond): x [B, T, H, W, C_in], cond [B, D] -> [B, T, sH, sW, C_out] with s = 2 if upsample else 1.
    """

    def __init__(self, channels, upsample=True, upsample_method="bilinear", kernel_initializer="orthogonal",
                 **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.upsample = upsample
        self.upsample_method = upsample_method
        init = kernel_initializer
        self.bn1 = ConditionalBatchNorm(kernel_initializer=init, name="cbn1")
        self.conv1 = SNConv(channels, 3, kernel_initializer=init, name="conv1")
        self.bn2 = ConditionalBatchNorm(kernel_initializer=init, name="cbn2")
        self.conv2 = SNConv(channels, 3, kernel_initializer=init, name="conv2")
        self.kernel_initializer = init

    def build(self, x_shape, cond_shape):
        self.skip = None
        if int(x_shape[-1]) != self.channels:
            self.skip = SNConv(self.channels, 1, kernel_initializer=self.kernel_initializer, name="skip")

    def _up(self, x):
        return upsample2x(x, self.upsample_method) if self.upsample else x

    def call(self, x, cond, training=False):
        h = tf.nn.relu(self.bn1(x, cond, training=training))
        h = self.conv1(self._up(h), training=training)
        h = tf.nn.relu(self.bn2(h, cond, training=training))
        h = self.conv2(h, training=training)
        skip = self._up(x)
        if self.skip is not None:
            skip = self.skip(skip, training=training)
        return h + skip


class DBlock(keras.layers.Layer):
    """BigGAN discriminator block, 2-D (per frame) or 3-D (3x3x3 convs over time and space).

    (ReLU) -> 3x3 conv -> ReLU -> 3x3 conv -> (2x2 avg pool), plus a skip path 1x1 conv and pool (pool first
    in the input block, which has no leading ReLU, as in BigGAN). The skip conv exists when channels change or
    the block downsamples.
    call(x): x [B, T, H, W, C_in] -> [B, T', H/s, W/s, C_out], s = 2 if downsample else 1; T' = T unless
    pool_time (3-D blocks only) halves it.
    """

    def __init__(self, channels, rank=2, downsample=True, preactivation=True, pool_time=False,
                 kernel_initializer="orthogonal", **kwargs):
        super().__init__(**kwargs)
        if pool_time and rank != 3:
            raise ValueError("pool_time needs a 3-D block (rank=3).")
        self.channels = channels
        self.downsample = downsample
        self.preactivation = preactivation
        self.pool_time = pool_time
        init = kernel_initializer
        self.conv1 = SNConv(channels, 3, rank=rank, kernel_initializer=init, name="conv1")
        self.conv2 = SNConv(channels, 3, rank=rank, kernel_initializer=init, name="conv2")
        self.kernel_initializer = init

    def build(self, input_shape):
        self.skip = None
        if int(input_shape[-1]) != self.channels or self.downsample:
            self.skip = SNConv(self.channels, 1, kernel_initializer=self.kernel_initializer, name="skip")

    def _pool(self, x):
        return avgpool(x, time=self.pool_time) if self.downsample else x

    def call(self, x, training=False):
        h = tf.nn.relu(x) if self.preactivation else x
        h = self.conv1(h, training=training)
        h = self.conv2(tf.nn.relu(h), training=training)
        h = self._pool(h)
        skip = x
        if self.skip is not None:
            if self.preactivation:
                skip = self._pool(self.skip(skip, training=training))
            else:
                skip = self.skip(self._pool(skip), training=training)
        return h + skip
