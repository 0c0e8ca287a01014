"""Spectral normalisation as BigGAN and DVD-GAN use it, and the layers that carry it.

Unlike ``keras.layers.SpectralNormalization`` (which overwrites the stored kernel with W/sigma and lets no
gradient through sigma), here the raw weight W stays the trainable parameter; every call computes
W_bar = W / sigma(W) on the fly, where sigma is estimated with the stored left singular-vector estimate ``u``:

    v = normalise(u W^T),  u' = normalise(v W),  sigma = v W u'^T

``u`` and ``v`` are held constant for the gradient (``stop_gradient``), so the gradient flows through sigma.
``u`` is updated by one power iteration per call in training only (not while ``frozen_vectors()`` is active:
the standing-statistics pass runs the EMA generator in training mode without moving its vectors).

Weights are laid out as a matrix [fan_in, fan_out] (a conv kernel [kh, kw(, kt), c_in, c_out] is reshaped to
[kh*kw*c_in, c_out]), ``u`` has shape [1, fan_out].

Memory switch (gin ``spectral_norm.divide_output = True``, default False): SNDense and SNConv compute
``op(x, W) / sigma`` instead of ``op(x, W / sigma)`` (the same function: the ops are linear in the kernel), so the
normalised kernel W / sigma is never materialised nor kept for the backward pass; the backward pass needs only W
(a variable), sigma and x. The gradient through sigma is kept: dL/dsigma = -<W, dL/dK> / sigma, where K is the
kernel op sees and dL/dK the gradient op's backward gives it (see ``_kernel_with_sigma_gradient``). The switch
covers SNDense and SNConv calls, including the blocks' rematerialised path (``blocks.checkpointed``); the class
embedding and the ConvGRU are unchanged.
"""
import contextlib
import threading

import gin
import keras
import tensorflow as tf

from dvdgan_tf.nets.scoped_setting import scoped

SN_EPSILON = 1e-4
_LOCAL = threading.local()


@contextlib.contextmanager
def frozen_vectors():
    """While active (in this thread, at trace time), training-mode calls do not update ``u``."""
    with scoped(_LOCAL, "frozen", True):
        yield


@gin.configurable("spectral_norm")
def settings(divide_output=False):
    """gin ``spectral_norm.divide_output``: the default of SNDense's and SNConv's ``divide_output`` (see the module
    docstring). Off by default (the default path is unchanged)."""
    return {"divide_output": bool(divide_output)}


@tf.custom_gradient
def _kernel_with_sigma_gradient(w, sigma):
    """Returns ``w`` unchanged (no copy); in the backward pass, given dL/dK for the kernel K = w that an op linear in
    its kernel used to compute ``op(x, K) / sigma``, returns dL/dw = dL/dK (the direct term; dL/dK already holds
    the 1 / sigma) and dL/dsigma = -<w, dL/dK> / sigma (as sum(dL/dy * op(x, w)) = <w, filter gradient>)."""
    def grad(g):
        g = tf.cast(g, w.dtype)
        return g, -tf.reduce_sum(w * g) / sigma
    return tf.identity(w), grad


@tf.custom_gradient
def _scale_output(y, scale):
    """``y * scale``; the backward pass keeps only the scalar ``scale`` (not ``y``) and gives ``scale`` no gradient
    (its gradient reaches sigma through ``_kernel_with_sigma_gradient``)."""
    def grad(dy):
        return dy * tf.cast(scale, dy.dtype), tf.zeros_like(scale)
    return y * tf.cast(scale, y.dtype), grad


def _l2_normalize(x, eps=SN_EPSILON):
    return x / (tf.norm(x) + eps)


def spectral_norm_step(w_mat, u, eps=SN_EPSILON):
    """One power iteration on a weight matrix.

    Args:
      w_mat: [fan_in, fan_out] float32 weight matrix.
      u: [1, fan_out] float32 estimate of the leading right singular vector of ``w_mat``.
      eps: added to norms for stability.

    Returns:
      (sigma, new_u): sigma is a scalar estimate of the largest singular value with gradient w.r.t. ``w_mat``
      (u and v held constant); new_u is [1, fan_out] with no gradient.
    """
    u = tf.stop_gradient(u)
    v = tf.stop_gradient(_l2_normalize(tf.matmul(u, w_mat, transpose_b=True), eps))  # [1, fan_in]
    new_u = tf.stop_gradient(_l2_normalize(tf.matmul(v, w_mat), eps))  # [1, fan_out]
    sigma = tf.squeeze(tf.matmul(tf.matmul(v, w_mat), new_u, transpose_b=True))
    return sigma, new_u


class SpectralNormLayer(keras.layers.Layer):
    """Base class: a layer whose weight ``self.kernel`` is used as ``kernel / sigma`` when ``use_sn`` is set."""

    def __init__(self, use_sn=True, kernel_initializer="orthogonal", divide_output=None, **kwargs):
        super().__init__(**kwargs)
        self.use_sn = use_sn
        self.divide_output = settings()["divide_output"] if divide_output is None else bool(divide_output)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _add_kernel(self, shape, name="kernel"):
        self.kernel = self.add_weight(name=name, shape=shape, initializer=self.kernel_initializer,
                                      dtype="float32", autocast=False)
        if self.use_sn:
            self.sn_u = self.add_weight(
                name="sn_u", shape=(1, shape[-1]), trainable=False, dtype="float32", autocast=False,
                initializer=keras.initializers.RandomNormal(stddev=1.0), aggregation="mean")

    def sigma(self, training=False):
        """sigma(W) for this call: a float32 scalar with W's gradient (1.0 without SN); updates u in training
        (not under ``frozen_vectors``). One call per layer call: ``kernel_and_scale(training)`` is
        ``normalize(sigma(training))``."""
        if not self.use_sn:
            return tf.ones([], tf.float32)
        w = tf.convert_to_tensor(self.kernel)
        sigma, new_u = spectral_norm_step(tf.reshape(w, [-1, w.shape[-1]]), tf.convert_to_tensor(self.sn_u))
        if training and not getattr(_LOCAL, "frozen", False):
            self.sn_u.assign(new_u)
        return sigma

    def normalize(self, sigma):
        """(kernel, scale) with ``op(x, kernel) * scale == op(x, W / sigma)`` for an op linear in its kernel, W
        read from the variable here. Default: (W / sigma, None). With ``divide_output``: (W, 1 / sigma), W carrying
        sigma's gradient (``_kernel_with_sigma_gradient``). Without SN: (W, None).

        Split from ``sigma`` for the blocks' rematerialised path (``blocks.checkpointed``): sigma (and the u
        update) is computed once, outside; ``normalize`` runs inside the checkpointed function, so its kernel
        (and the kernel's bfloat16 copy) is recomputed in the backward pass instead of kept."""
        w = tf.convert_to_tensor(self.kernel)
        if not self.use_sn:
            return w, None
        if self.divide_output:
            return _kernel_with_sigma_gradient(w, sigma), tf.stop_gradient(1.0 / sigma)
        return w / sigma, None

    def normalized_kernel(self, training=False):
        """Returns W / sigma(W) in float32 with the kernel's shape; updates u in training."""
        sigma = self.sigma(training)
        w = tf.convert_to_tensor(self.kernel)
        return w / sigma if self.use_sn else w

    def kernel_and_scale(self, training=False):
        """``normalize(sigma(training))``: (kernel, scale) with ``op(x, kernel) * scale == op(x,
        normalized_kernel())``; updates u in training, as ``normalized_kernel``."""
        return self.normalize(self.sigma(training))

    def kernel_matrix(self):
        """The raw weight as the [fan_in, fan_out] matrix whose largest singular value sigma estimates."""
        w = tf.convert_to_tensor(self.kernel)
        return tf.reshape(w, [-1, w.shape[-1]])

    def get_config(self):
        config = super().get_config()
        config.update(use_sn=self.use_sn, divide_output=self.divide_output,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


class SNDense(SpectralNormLayer):
    """Dense layer with spectral normalisation. Input [..., fan_in] -> output [..., units]."""

    def __init__(self, units, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.use_bias = use_bias

    def build(self, input_shape):
        self._add_kernel((int(input_shape[-1]), self.units))
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, x, training=False):
        kernel, scale = self.kernel_and_scale(training)
        y = tf.tensordot(x, tf.cast(kernel, x.dtype), axes=[[x.shape.rank - 1], [0]])
        if scale is not None:
            y = _scale_output(y, scale)
        if self.use_bias:
            y = y + tf.cast(self.bias, y.dtype)
        return y


class SNConv(SpectralNormLayer):
    """2-D or 3-D convolution (stride 1) with spectral normalisation.

    A 2-D conv accepts images [N, H, W, C] or videos [B, T, H, W, C]; on videos it runs per frame (time folded
    into the batch). A 3-D conv takes videos [B, T, H, W, C] and convolves over (T, H, W).
    """

    def __init__(self, filters, kernel_size=3, rank=2, use_bias=True, padding="SAME", **kwargs):
        super().__init__(**kwargs)
        if rank not in (2, 3):
            raise ValueError(f"SNConv rank must be 2 or 3, got {rank}.")
        self.filters = filters
        self.kernel_size = kernel_size
        self.rank = rank
        self.use_bias = use_bias
        self.padding = padding

    def build(self, input_shape):
        self._add_kernel((self.kernel_size,) * self.rank + (int(input_shape[-1]), self.filters))
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def convolve(self, x, kernel, scale=None):
        """Convolves ``x`` with an explicit (already normalised) kernel, or with the pair of ``kernel_and_scale``;
        folds time for 2-D convs."""
        kernel = tf.cast(kernel, x.dtype)
        if self.rank == 3:
            y = tf.nn.conv3d(x, kernel, strides=[1] * 5, padding=self.padding)
        elif x.shape.rank == 5:
            b, t = tf.shape(x)[0], tf.shape(x)[1]
            folded = tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))
            y = tf.nn.conv2d(folded, kernel, strides=1, padding=self.padding)
            y = tf.reshape(y, tf.concat([[b, t], tf.shape(y)[1:]], 0))
        else:
            y = tf.nn.conv2d(x, kernel, strides=1, padding=self.padding)
        if scale is not None:
            y = _scale_output(y, scale)
        if self.use_bias:
            y = y + tf.cast(self.bias, y.dtype)
        return y

    def call(self, x, training=False):
        return self.convolve(x, *self.kernel_and_scale(training))


class SNEmbedding(SpectralNormLayer):
    """Class embedding table [num_classes, dim], optionally spectrally normalised. Input [B] int -> [B, dim]."""

    def __init__(self, num_classes, dim, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.dim = dim

    def build(self, input_shape):
        self._add_kernel((self.num_classes, self.dim), name="embeddings")

    def call(self, labels, training=False):
        table = self.normalized_kernel(training)
        return tf.cast(tf.gather(table, labels), self.compute_dtype)
