"""Tests of dvdgan_tf.nets.convgru.ConvGRU against a per-step NumPy reference."""
import numpy as np
import tensorflow as tf

from dvdgan_tf.nets.convgru import ConvGRU

B, T, H, W, CIN, CH = 2, 4, 5, 4, 3, 4


def _np_conv2d_same(x, k):
    """x [N, H, W, Ci], k [kh, kw, Ci, Co] (odd sizes), stride 1, zero 'SAME' padding (cross-correlation)."""
    kh, kw = k.shape[:2]
    ph, pw = kh // 2, kw // 2
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    out = np.zeros(x.shape[:3] + (k.shape[-1],))
    for i in range(kh):
        for j in range(kw):
            out += xp[:, i:i + x.shape[1], j:j + x.shape[2], :] @ k[i, j]
    return out


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _np_convgru(x, kg, bg, kc, bc, h0):
    h = h0
    outs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        r, u = np.split(_sigmoid(_np_conv2d_same(np.concatenate([xt, h], -1), kg) + bg), 2, axis=-1)
        c = np.maximum(_np_conv2d_same(np.concatenate([xt, r * h], -1), kc) + bc, 0.0)
        h = u * h + (1.0 - u) * c
        outs.append(h)
    return np.stack(outs, 1)


def _layer_and_input(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, H, W, CIN)).astype(np.float32) * 2.0
    layer = ConvGRU(CH, kernel_initializer="glorot_normal")
    layer(tf.constant(x))
    # Non-zero biases, so the test also checks that each bias is applied exactly once per step.
    layer.gates.bias.assign(rng.standard_normal(2 * CH).astype(np.float32) * 0.5)
    layer.candidate.bias.assign(rng.standard_normal(CH).astype(np.float32) * 0.5)
    return layer, x, rng


def _reference(layer, x, h0):
    kg = layer.gates.normalized_kernel().numpy().astype(np.float64)
    kc = layer.candidate.normalized_kernel().numpy().astype(np.float64)
    assert kg.shape == (3, 3, CIN + CH, 2 * CH) and kc.shape == (3, 3, CIN + CH, CH)
    return _np_convgru(x.astype(np.float64), kg, layer.gates.bias.numpy(), kc, layer.candidate.bias.numpy(), h0)


def test_np_conv_reference_matches_tf():
    """Check of the NumPy helper itself against tf.nn.conv2d."""
    rng = np.random.default_rng(9)
    x, k = rng.standard_normal((2, 5, 4, 3)), rng.standard_normal((3, 3, 3, 2))
    np.testing.assert_allclose(_np_conv2d_same(x, k), tf.nn.conv2d(x, k, 1, "SAME").numpy(), rtol=1e-10, atol=1e-10)


def test_convgru_matches_reference_zero_state():
    layer, x, _ = _layer_and_input(0)
    y = layer(tf.constant(x), training=False).numpy()
    assert y.shape == (B, T, H, W, CH)
    ref = _reference(layer, x, np.zeros((B, H, W, CH)))
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    assert np.std(y[:, -1]) > 1e-2  # not a degenerate all-zero output


def test_convgru_matches_reference_initial_state():
    layer, x, rng = _layer_and_input(1)
    h0 = rng.standard_normal((B, H, W, CH)).astype(np.float32)
    y = layer(tf.constant(x), initial_state=tf.constant(h0), training=False).numpy()
    ref = _reference(layer, x, h0.astype(np.float64))
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    # The initial state matters.
    y0 = layer(tf.constant(x), training=False).numpy()
    assert np.max(np.abs(y0[:, 0] - y[:, 0])) > 1e-2


def test_convgru_training_call_uses_current_kernel():
    """With training=True the step uses W / sigma from the u held before the call (u is then updated)."""
    layer, x, _ = _layer_and_input(2)
    ref = _reference(layer, x, np.zeros((B, H, W, CH)))
    u = layer.gates.sn_u.numpy()
    y = layer(tf.constant(x), training=True).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    assert not np.array_equal(layer.gates.sn_u.numpy(), u)


def test_convgru_is_causal():
    layer, x, rng = _layer_and_input(3)
    y = layer(tf.constant(x)).numpy()
    for t in (T - 1, 1):
        x2 = x.copy()
        x2[:, t] += rng.standard_normal(x2[:, t].shape).astype(np.float32) * 3.0
        y2 = layer(tf.constant(x2)).numpy()
        np.testing.assert_allclose(y2[:, :t], y[:, :t], rtol=0, atol=1e-6)
        assert np.max(np.abs(y2[:, t] - y[:, t])) > 1e-3
        if t + 1 < T:  # the change propagates forward through the hidden state
            assert np.max(np.abs(y2[:, t + 1] - y[:, t + 1])) > 1e-4


def test_bfloat16_hidden_kernels_are_cast_once_not_per_frame():
    """Under mixed_bfloat16 the hidden-state halves of both kernels are cast to bfloat16 once per call: a cast per
    frame would keep T kernel copies alive for the backward pass (memory that grows with the clip length)."""
    import keras
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = ConvGRU(CH)
        x = tf.zeros([B, T, H, W, CIN])
        graph = tf.function(lambda x: layer(x, training=True)).get_concrete_function(x).graph
    finally:
        keras.mixed_precision.set_global_policy(policy)
    hidden_halves = {(3, 3, CH, 2 * CH), (3, 3, CH, CH)}  # [kh, kw, hidden channels, gates or candidate]
    casts = [op for op in graph.get_operations() if op.type == "Cast"
             and op.outputs[0].dtype == tf.bfloat16 and tuple(op.outputs[0].shape) in hidden_halves]
    assert T > 1 and len(casts) == 2, [op.name for op in casts]
