"""Tests of dvdgan_tf.nets.spectral_norm: power iteration, gradient through sigma, variables, mixed precision."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.nets.spectral_norm import SN_EPSILON, SNConv, SNDense


def _np_normalize(x, eps=SN_EPSILON):
    return x / (np.linalg.norm(x) + eps)


def _kernel_with_spectrum(rng, shape, top=2.5, rest=1.5):
    """A random kernel of ``shape`` whose [-1, out] matrix has largest singular value ``top`` and the others <= rest."""
    fan_in, fan_out = int(np.prod(shape[:-1])), shape[-1]
    a = rng.standard_normal((fan_in, fan_out))
    left, _, right_t = np.linalg.svd(a, full_matrices=False)
    k = min(fan_in, fan_out)
    s = np.concatenate([[top], np.linspace(rest, 0.3, k - 1)])
    w = (left * s) @ right_t
    return w.reshape(shape).astype(np.float32), right_t


def _top_singular_value(kernel):
    kernel = np.asarray(kernel, np.float64)
    return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


def _expected_gradient(w, u, c):
    """The hand-derived gradient of L = sum(C * W / sigma(W)) w.r.t. W, u and v held constant, in float64:
    C / sigma - (<C, W> / sigma^2) v^T u' (one power iteration from u); returns (gradient, sigma)."""
    w, u = w.astype(np.float64), u.astype(np.float64)
    v = _np_normalize(u @ w.T)
    u_new = _np_normalize(v @ w)
    sigma = (v @ w @ u_new.T).item()
    return c / sigma - (np.sum(c * w) / sigma ** 2) * np.outer(v, u_new), sigma


def _make_layer(kind):
    if kind == "dense":
        layer, x = SNDense(8), tf.zeros([2, 12])
    elif kind == "conv2d":
        layer, x = SNConv(8, 3, rank=2), tf.zeros([2, 3, 4, 4, 4])
    else:
        layer, x = SNConv(8, 3, rank=3), tf.zeros([2, 3, 4, 4, 4])
    layer(x)  # builds
    return layer, x


@pytest.mark.parametrize("kind", ["dense", "conv2d", "conv3d"])
def test_power_iteration_converges_to_unit_spectral_norm(kind):
    rng = np.random.default_rng(0)
    layer, x = _make_layer(kind)
    w, right_t = _kernel_with_spectrum(rng, tuple(layer.kernel.shape))
    layer.kernel.assign(w)
    # A poor start: u almost equal to the second right singular vector, so sigma is badly underestimated.
    u0 = (right_t[1] + 0.01 * right_t[0])[None, :].astype(np.float32)
    layer.sn_u.assign(u0)

    # Inference calls never touch u, and the normalised kernel is then far from spectral norm 1.
    for _ in range(5):
        layer(x, training=False)
    np.testing.assert_array_equal(layer.sn_u.numpy(), u0)
    assert _top_singular_value(layer.normalized_kernel().numpy()) > 1.2

    for _ in range(50):
        layer(x, training=True)
    assert not np.allclose(layer.sn_u.numpy(), u0)
    assert abs(_top_singular_value(layer.normalized_kernel().numpy()) - 1.0) < 1e-3
    # The stored u has converged to the leading right singular vector (up to sign).
    u = layer.sn_u.numpy()[0]
    assert abs(abs(np.dot(u / np.linalg.norm(u), right_t[0])) - 1.0) < 1e-4


def test_gradient_flows_through_sigma():
    rng = np.random.default_rng(1)
    fan_in, units = 6, 5
    layer = SNDense(units, use_bias=False)
    x = tf.constant(rng.standard_normal((3, fan_in)), tf.float32)
    layer(x)
    w_np = rng.standard_normal((fan_in, units)).astype(np.float32)
    layer.kernel.assign(w_np)
    layer.sn_u.assign(rng.standard_normal((1, units)).astype(np.float32))
    d = rng.standard_normal((3, units)).astype(np.float32)
    u_before = layer.sn_u.numpy()

    # L = sum(D * (x @ W_bar)) = sum(C * W_bar) with C = x^T D.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(d * layer(x, training=False))
    grad = tape.gradient(loss, layer.kernel).numpy()
    np.testing.assert_array_equal(layer.sn_u.numpy(), u_before)

    c = x.numpy().astype(np.float64).T @ d
    expected, sigma = _expected_gradient(w_np, u_before, c)
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-5)
    # The sigma term is not negligible: a stop_gradient on sigma would give C / sigma and fail above.
    assert np.max(np.abs(grad - c / sigma)) > 1e-2
    # The same gradient through normalized_kernel directly.
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.constant(c, tf.float32) * layer.normalized_kernel(training=False))
    np.testing.assert_allclose(tape.gradient(loss, layer.kernel).numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["dense", "conv2d"])
def test_raw_kernel_is_the_trainable_variable(kind):
    layer, x = _make_layer(kind)
    rng = np.random.default_rng(2)
    w = rng.standard_normal(tuple(layer.kernel.shape)).astype(np.float32) * 3.0
    layer.kernel.assign(w)
    u0 = layer.sn_u.numpy()
    for _ in range(3):
        layer(x, training=True)
    np.testing.assert_array_equal(layer.kernel.numpy(), w)  # not overwritten with W / sigma
    assert not np.array_equal(layer.sn_u.numpy(), u0)
    trainable = [id(v) for v in layer.trainable_weights]
    non_trainable = [id(v) for v in layer.non_trainable_weights]
    assert id(layer.kernel) in trainable
    assert id(layer.sn_u) not in trainable and id(layer.sn_u) in non_trainable
    assert not layer.sn_u.trainable


def test_use_sn_false_returns_raw_kernel():
    layer = SNDense(4, use_sn=False)
    x = tf.constant(np.random.default_rng(3).standard_normal((2, 3)), tf.float32)
    y = layer(x, training=True)
    assert not hasattr(layer, "sn_u")
    np.testing.assert_allclose(y.numpy(), x.numpy() @ layer.kernel.numpy() + layer.bias.numpy(), rtol=1e-5, atol=1e-6)


def test_mixed_bfloat16_policy():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = SNConv(4, 3, rank=2)
        x = tf.random.stateless_normal([2, 2, 4, 4, 3], seed=[0, 1])
        y = layer(x, training=True)
        assert y.dtype == tf.bfloat16
        assert layer.kernel.dtype == "float32"
        assert layer.sn_u.dtype == "float32"
        assert layer.normalized_kernel().dtype == tf.float32
        assert y.shape == (2, 2, 4, 4, 4)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _pair(kind, rng):
    """Two layers of ``kind`` with the same kernel, bias and u: the default one and one with divide_output."""
    layers = []
    for divide in (False, True):
        if kind == "dense":
            layer, x = SNDense(8, divide_output=divide), tf.constant(rng.standard_normal((2, 12)), tf.float32)
        else:
            layer = SNConv(8, 3, rank=2 if kind == "conv2d" else 3, divide_output=divide)
            x = tf.constant(rng.standard_normal((2, 3, 4, 4, 4)), tf.float32)
        layer(x)
        layers.append(layer)
    a, b = layers
    for name in ("kernel", "bias", "sn_u"):
        value = rng.standard_normal(tuple(getattr(a, name).shape)).astype(np.float32)
        getattr(a, name).assign(value)
        getattr(b, name).assign(value)
    return a, b, x


@pytest.mark.parametrize("kind", ["dense", "conv2d", "conv3d"])
def test_divide_output_same_function_and_gradients(kind):
    """op(x, W) / sigma (divide_output) against op(x, W / sigma): outputs, u updates and the gradients of the kernel
    (sigma's term included), the bias and the input agree to float32 rounding."""
    rng = np.random.default_rng(5)
    a, b, x = _pair(kind, rng)
    assert not a.divide_output and b.divide_output
    results = []
    for layer in (a, b):
        d = tf.constant(np.random.default_rng(6).standard_normal(a(x).shape), tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(d * y)
        grads = tape.gradient(loss, [layer.kernel, layer.bias, x])
        results.append([y.numpy(), layer.sn_u.numpy()] + [g.numpy() for g in grads])
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_divide_output_gradient_through_sigma_by_hand():
    """SNDense with divide_output against the hand-derived gradient of sum(C * W / sigma) (as above)."""
    rng = np.random.default_rng(7)
    layer = SNDense(5, use_bias=False, divide_output=True)
    x = tf.constant(rng.standard_normal((3, 6)), tf.float32)
    layer(x)
    w_np = rng.standard_normal((6, 5)).astype(np.float32)
    layer.kernel.assign(w_np)
    layer.sn_u.assign(rng.standard_normal((1, 5)).astype(np.float32))
    d = rng.standard_normal((3, 5)).astype(np.float32)
    u_before = layer.sn_u.numpy()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(d * layer(x, training=False))
    grad = tape.gradient(loss, layer.kernel).numpy()
    c = x.numpy().astype(np.float64).T @ d
    expected, sigma = _expected_gradient(w_np, u_before, c)
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-5)
    assert np.max(np.abs(grad - c / sigma)) > 1e-2


def test_divide_output_gin_switch_and_bfloat16():
    """gin spectral_norm.divide_output sets the layers' default; under mixed_bfloat16 the output matches the default
    path to bfloat16 rounding."""
    import gin  # pylint: disable=import-outside-toplevel
    assert not SNConv(4).divide_output
    gin.parse_config("spectral_norm.divide_output = True")
    try:
        assert SNConv(4).divide_output and SNDense(4).divide_output
        assert not SNConv(4, divide_output=False).divide_output
    finally:
        gin.clear_config()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        a, b, x = _pair("conv2d", np.random.default_rng(8))
        ya, yb = a(x, training=True), b(x, training=True)
        assert yb.dtype == tf.bfloat16
        np.testing.assert_allclose(tf.cast(yb, tf.float32).numpy(), tf.cast(ya, tf.float32).numpy(),
                                   rtol=3e-2, atol=3e-2)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("remat", [False, True])
def test_divide_output_in_blocks_with_and_without_remat(remat):
    """A DBlock built under gin spectral_norm.divide_output (remat off: the layers' own calls; remat on: the blocks'
    ``checkpointed`` path, whose convs normalise inside with the switch too) against the default block with remat
    on: same output and gradients of every weight and of the input."""
    import gin  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.nets.blocks import DBlock  # pylint: disable=import-outside-toplevel
    rng = np.random.default_rng(9)
    x = tf.constant(rng.standard_normal((2, 2, 8, 8, 3)), tf.float32)
    reference = DBlock(4, rank=2, remat=True)
    reference(x)
    gin.parse_config("spectral_norm.divide_output = True")
    try:
        switched = DBlock(4, rank=2, remat=remat)
        switched(x)
    finally:
        gin.clear_config()
    assert switched.conv1.divide_output and not reference.conv1.divide_output
    for a, b in zip(reference.weights, switched.weights):
        value = rng.standard_normal(tuple(a.shape)).astype(np.float32)
        a.assign(value)
        b.assign(value)
    results = []
    for block in (reference, switched):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(block(x, training=True)))
        grads = tape.gradient(loss, block.trainable_weights + [x])
        results.append([g.numpy() for g in grads] + [w.numpy() for w in block.weights])
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
