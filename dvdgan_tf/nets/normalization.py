"""Batch normalisation for videos with per-frame statistics, and its class-conditional form.

DVD-GAN's generator must not let frames exchange information through BatchNorm: statistics are computed per
frame and channel, over the batch and the spatial axes only. Under a ``tf.distribute`` strategy with several
replicas the sums are all-reduced, so statistics cover the global batch (BigGAN's cross-replica BN).

The moving (and standing, see ``nets/standing_stats.py``) statistics are per frame and channel too, [T, C]:
inference normalises each frame with its own statistics, so given the statistics of a batch, inference on that
batch equals training mode. Checkpoints written before that held per-channel [C] statistics;
``channel_statistics()`` builds layers of that old layout, to read such checkpoints.
"""
import contextlib
import threading

import keras
import tensorflow as tf

from dvdgan_tf.nets.scoped_setting import scoped
from dvdgan_tf.nets.spectral_norm import SNDense


def _cross_replica_sum(tensors):
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return tensors
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, tensors)


def per_frame_raw_moments(x):
    """E[x] and E[x^2] of a video per frame and channel, over batch, height and width (global batch).

    Args:
      x: [B, T, H, W, C] float tensor.

    Returns:
      (mean, mean_of_squares), each float32 [T, C].
    """
    x = tf.cast(x, tf.float32)
    count = tf.cast(tf.shape(x)[0] * tf.shape(x)[2] * tf.shape(x)[3], tf.float32)
    sums = [tf.reduce_sum(x, axis=[0, 2, 3]), tf.reduce_sum(tf.square(x), axis=[0, 2, 3]), count]
    total, total_sq, count = _cross_replica_sum(sums)
    return total / count, total_sq / count


def variance_from_raw_moments(mean, mean_sq):
    return tf.maximum(mean_sq - tf.square(mean), 0.0)


def per_frame_moments(x):
    """Mean and variance of a video per frame and channel, over batch, height and width (global batch).

    Args:
      x: [B, T, H, W, C] float tensor.

    Returns:
      (mean, variance), each float32 [T, C].
    """
    mean, mean_sq = per_frame_raw_moments(x)
    return mean, variance_from_raw_moments(mean, mean_sq)


_LOCAL = threading.local()  # per thread: MirroredStrategy traces each replica's function in its own thread


@contextlib.contextmanager
def collect_moments():
    """While active (in this thread), every FrameBatchNorm called in training mode appends
    (layer, E[x] [T, C], E[x^2] [T, C]) of its batch to the yielded list and leaves its moving statistics alone.
    Used by the standing-statistics pass, inside the traced per-replica function."""
    sink = []
    with scoped(_LOCAL, "sink", sink):
        yield sink


@contextlib.contextmanager
def given_statistics(statistics):
    """While active (in this thread), every FrameBatchNorm whose id is a key of ``statistics`` ({id(layer):
    (mean, variance)}, tensors of its moving statistics' shape) normalises in inference mode with those instead
    of its moving statistics, which it does not read or change. Lets a traced function (the export's signatures)
    choose statistics per call without assigning variables."""
    with scoped(_LOCAL, "given", statistics):
        yield


@contextlib.contextmanager
def channel_statistics():
    """FrameBatchNorm layers built while active (in this thread) keep per-channel [C] moving statistics, the
    layout of checkpoints written before per-frame statistics; only for reading such checkpoints."""
    with scoped(_LOCAL, "channel_stats", True):
        yield


class FrameBatchNorm(keras.layers.Layer):
    """BatchNorm without scale and offset whose statistics never mix frames.

    Input and output [B, T, H, W, C]. Training normalises with per-frame batch statistics [T, C] and updates the
    moving statistics [T, C] (momentum); inference normalises frame t with moving statistics t, so T (static) must
    be the T the layer was built with.
    """

    def __init__(self, momentum=0.99, epsilon=1e-4, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, input_shape):
        if len(input_shape) != 5 or input_shape[1] is None:
            raise ValueError(f"FrameBatchNorm expects videos [B, T, H, W, C] with a static T, got shape "
                             f"{tuple(input_shape)}.")
        channels = int(input_shape[-1])
        self.per_frame = not getattr(_LOCAL, "channel_stats", False)
        shape = (int(input_shape[1]), channels) if self.per_frame else (channels,)
        kw = dict(shape=shape, trainable=False, dtype="float32", autocast=False, aggregation="mean")
        self.moving_mean = self.add_weight(name="moving_mean", initializer="zeros", **kw)
        self.moving_variance = self.add_weight(name="moving_variance", initializer="ones", **kw)

    def call(self, x, training=False):
        if training:
            mean, mean_sq = per_frame_raw_moments(x)
            variance = variance_from_raw_moments(mean, mean_sq)
            sink = getattr(_LOCAL, "sink", None)
            if sink is not None:
                sink.append((self, mean, mean_sq))
            else:
                decay = 1.0 - self.momentum
                new_mean, new_var = (mean, variance) if self.per_frame else (
                    tf.reduce_mean(mean, 0), tf.reduce_mean(variance, 0))
                self.moving_mean.assign_sub(decay * (self.moving_mean - new_mean))
                self.moving_variance.assign_sub(decay * (self.moving_variance - new_var))
            mean, variance = mean[None, :, None, None, :], variance[None, :, None, None, :]
        else:
            mean, variance = (getattr(_LOCAL, "given", None) or {}).get(
                id(self), (self.moving_mean, self.moving_variance))
            if self.per_frame:
                if x.shape[1] is not None and x.shape[1] != mean.shape[0]:
                    raise ValueError(f"{self.name} keeps statistics for {mean.shape[0]} frames; got a video of "
                                     f"{x.shape[1]} frames.")
                mean, variance = mean[None, :, None, None, :], variance[None, :, None, None, :]
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
