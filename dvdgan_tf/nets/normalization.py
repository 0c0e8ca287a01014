"""Batch normalisation for videos with per-frame statistics, and its class-conditional form.

DVD-GAN's generator must not let frames exchange information through BatchNorm: statistics are computed per
frame and channel, over the batch and the spatial axes only. Under a ``tf.distribute`` strategy with several
replicas the sums are all-reduced, so statistics cover the global batch (BigGAN's cross-replica BN).
"""
import keras
import tensorflow as tf

from dvdgan_tf.nets.spectral_norm import SNDense


def _cross_replica_sum(tensors):
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return tensors
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, tensors)


def per_frame_moments(x):
    """Mean and variance of a video per frame and channel, over batch, height and width (global batch).

    Args:
      x: [B, T, H, W, C] float tensor.

    Returns:
      (mean, variance), each float32 [T, C].
    """
    x = tf.cast(x, tf.float32)
    count = tf.cast(tf.shape(x)[0] * tf.shape(x)[2] * tf.shape(x)[3], tf.float32)
    sums = [tf.reduce_sum(x, axis=[0, 2, 3]), tf.reduce_sum(tf.square(x), axis=[0, 2, 3]), count]
    total, total_sq, count = _cross_replica_sum(sums)
    mean = total / count
    variance = tf.maximum(total_sq / count - tf.square(mean), 0.0)
    return mean, variance


class FrameBatchNorm(keras.layers.Layer):
    """BatchNorm without scale and offset whose statistics never mix frames.

    Input and output [B, T, H, W, C]. Training normalises with per-frame batch statistics [T, C]; the moving
    statistics are per channel [C] (the frame average of the per-frame ones), so inference works for any T.
    """

    def __init__(self, momentum=0.99, epsilon=1e-4, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, input_shape):
        if len(input_shape) != 5:
            raise ValueError(f"FrameBatchNorm expects videos [B, T, H, W, C], got shape {tuple(input_shape)}.")
        channels = int(input_shape[-1])
        kw = dict(shape=(channels,), trainable=False, dtype="float32", autocast=False, aggregation="mean")
        self.moving_mean = self.add_weight(name="moving_mean", initializer="zeros", **kw)
        self.moving_variance = self.add_weight(name="moving_variance", initializer="ones", **kw)

    def call(self, x, training=False):
        if training:
            mean, variance = per_frame_moments(x)
            decay = 1.0 - self.momentum
            self.moving_mean.assign_sub(decay * (self.moving_mean - tf.reduce_mean(mean, 0)))
            self.moving_variance.assign_sub(decay * (self.moving_variance - tf.reduce_mean(variance, 0)))
            mean, variance = mean[None, :, None, None, :], variance[None, :, None, None, :]
        else:
            mean, variance = self.moving_mean, self.moving_variance
        inv = tf.math.rsqrt(variance + self.epsilon)
        return (x - tf.cast(mean, x.dtype)) * tf.cast(inv, x.dtype)


class ConditionalBatchNorm(keras.layers.Layer):
    """Class-conditional BN: FrameBatchNorm, then per-channel gain and bias linear in the condition.

    call(x, cond): x [B, T, H, W, C], cond [B, D] (DVD-GAN: D = 240, [z; e(y)]) -> [B, T, H, W, C].
    gain = 1 + W_g cond and bias = W_b cond (spectrally normalised, no bias terms), shared by all frames.
    """

    def __init__(self, momentum=0.99, epsilon=1e-4, kernel_initializer="orthogonal", **kwargs):
        super().__init__(**kwargs)
        self.norm = FrameBatchNorm(momentum=momentum, epsilon=epsilon, name="bn")
        self.kernel_initializer = kernel_initializer

    def build(self, x_shape, cond_shape):
        channels = int(x_shape[-1])
        self.gain = SNDense(channels, use_bias=False, kernel_initializer=self.kernel_initializer, name="gain")
        self.bias = SNDense(channels, use_bias=False, kernel_initializer=self.kernel_initializer, name="bias")

    def call(self, x, cond, training=False):
        normed = self.norm(x, training=training)
        gain = 1.0 + self.gain(cond, training=training)
        bias = self.bias(cond, training=training)
        return normed * gain[:, None, None, None, :] + bias[:, None, None, None, :]
