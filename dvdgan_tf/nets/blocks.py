"""BigGAN residual blocks for videos [B, T, H, W, C]: the generator's up-block and 2-D/3-D discriminator blocks."""
import keras
import tensorflow as tf

from dvdgan_tf.nets.normalization import ConditionalBatchNorm, collect_moments
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


def checkpointed(fn, *tensors):
    """``fn(*tensors)`` with gradient checkpointing (``tf.recompute_grad``): the backward pass recomputes fn's
    activations instead of keeping them, so only its inputs stay in memory.

    fn must get its convs' spectral-norm sigmas from ``tensors`` (``SpectralNormLayer.sigma``, computed once,
    outside: one power-iteration update of each ``u`` per step, as without checkpointing, and the recomputation
    sees the same sigma) and read the kernels themselves inside (``SpectralNormLayer.normalize``, then
    ``SNConv.convolve``), so that the normalised kernels and their bfloat16 copies are recomputed in the backward
    pass rather than kept. Its one other side effect, the BatchNorm moving-statistics update, runs in the first
    (forward) call only: the recomputation runs under ``collect_moments`` into a discarded list. Weights (kernels,
    biases) are read as variables.
    """
    calls = []

    def run(*args):
        calls.append(None)
        if len(calls) == 1:
            return fn(*args)
        with collect_moments():  # the recomputation: statistics were updated by the forward call
            return fn(*args)

    return tf.recompute_grad(run)(*tensors)


class GBlock(keras.layers.Layer):
    """BigGAN generator block; frames are processed independently (cBN statistics are per frame).

    cBN -> ReLU -> (x2 upsample) -> 3x3 conv -> cBN -> ReLU -> 3x3 conv, plus a skip path
    (x2 upsample) -> 1x1 conv (the 1x1 conv only when channels change).
    call(x, cond): x [B, T, H, W, C_in], cond [B, D] -> [B, T, sH, sW, C_out] with s = 2 if upsample else 1.
    remat: in training, recompute the block's activations in the backward pass (``checkpointed``).
    """

    def __init__(self, channels, upsample=True, upsample_method="bilinear", kernel_initializer="orthogonal",
                 remat=False, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.upsample = upsample
        self.remat = remat
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
        if training and self.remat:
            return self._call_checkpointed(x, cond)
        h = tf.nn.relu(self.bn1(x, cond, training=training))
        h = self.conv1(self._up(h), training=training)
        h = tf.nn.relu(self.bn2(h, cond, training=training))
        h = self.conv2(h, training=training)
        skip = self._up(x)
        if self.skip is not None:
            skip = self.skip(skip, training=training)
        return h + skip

    def _call_checkpointed(self, x, cond):
        """``call`` in training with ``checkpointed``: what depends on the weights and ``cond`` alone (the convs'
        sigmas, updating u; the cBN gains and biases) is computed here once and passed in."""
        convs = [self.conv1, self.conv2] + ([self.skip] if self.skip is not None else [])
        sigmas = [conv.sigma(training=True) for conv in convs]
        affine = [(1.0 + bn.gain(cond, training=True), bn.bias(cond, training=True)) for bn in (self.bn1, self.bn2)]

        def cbn(bn, h, gain, bias):  # ConditionalBatchNorm.call with the given gain and bias
            return bn.norm(h, training=True) * gain[:, None, None, None, :] + bias[:, None, None, None, :]

        def forward(x, g1, b1, g2, b2, *sigmas):
            h = tf.nn.relu(cbn(self.bn1, x, g1, b1))
            h = self.conv1.convolve(self._up(h), *self.conv1.normalize(sigmas[0]))
            h = tf.nn.relu(cbn(self.bn2, h, g2, b2))
            h = self.conv2.convolve(h, *self.conv2.normalize(sigmas[1]))
            skip = self._up(x)
            if self.skip is not None:
                skip = self.skip.convolve(skip, *self.skip.normalize(sigmas[2]))
            return h + skip

        return checkpointed(forward, x, *affine[0], *affine[1], *sigmas)


class DBlock(keras.layers.Layer):
    """BigGAN discriminator block, 2-D (per frame) or 3-D (3x3x3 convs over time and space).

    (ReLU) -> 3x3 conv -> ReLU -> 3x3 conv -> (2x2 avg pool), plus a skip path 1x1 conv and pool (pool first
    in the input block, which has no leading ReLU, as in BigGAN). The skip conv exists when channels change or
    the block downsamples.
    call(x): x [B, T, H, W, C_in] -> [B, T', H/s, W/s, C_out], s = 2 if downsample else 1; T' = T unless
    pool_time (3-D blocks only) halves it.
    remat: in training, recompute the block's activations in the backward pass (``checkpointed``).
    """

    def __init__(self, channels, rank=2, downsample=True, preactivation=True, pool_time=False,
                 kernel_initializer="orthogonal", remat=False, **kwargs):
        super().__init__(**kwargs)
        if pool_time and rank != 3:
            raise ValueError("pool_time needs a 3-D block (rank=3).")
        self.channels = channels
        self.remat = remat
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
        if training and self.remat:
            convs = [self.conv1, self.conv2] + ([self.skip] if self.skip is not None else [])
            sigmas = [conv.sigma(training=True) for conv in convs]  # u updated once, here
            return checkpointed(lambda x, *sigmas: self._forward(x, sigmas), x, *sigmas)
        return self._forward(x, [None] * 3, training)

    def _forward(self, x, sigmas, training=True):
        """The block; each conv uses sigmas[i] (its spectral-norm sigma, computed already) if given, else
        computes its own."""
        conv = lambda layer, h, sigma: (layer(h, training=training) if sigma is None
                                        else layer.convolve(h, *layer.normalize(sigma)))
        h = tf.nn.relu(x) if self.preactivation else x
        h = conv(self.conv1, h, sigmas[0])
        h = conv(self.conv2, tf.nn.relu(h), sigmas[1])
        h = self._pool(h)
        skip = x
        if self.skip is not None:
            if self.preactivation:
                skip = self._pool(conv(self.skip, skip, sigmas[2]))
            else:
                skip = conv(self.skip, self._pool(skip), sigmas[2])
        return h + skip
