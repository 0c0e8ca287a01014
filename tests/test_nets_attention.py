"""Tests of dvdgan_tf.nets.attention against plain NumPy references."""
import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.nets.attention import SelfAttention, SeparableSelfAttention, make_attention

B, T, H, W, C = 2, 3, 4, 5, 16


def _input(seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal((B, T, H, W, C)) * scale).astype(np.float32)


def _softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _kernels(stage):
    return [getattr(stage, n).normalized_kernel().numpy().astype(np.float64) for n in ("theta", "phi", "g", "o")]


# einsum specs per attended axis: (logits spec, output spec); i/j index the attended axis.
_AXIS_SPECS = {
    "height": ("btiwk,btjwk->btwij", "btwij,btjwk->btiwk"),
    "width": ("bthik,bthjk->bthij", "bthij,bthjk->bthik"),
    "time": ("bihwk,bjhwk->bhwij", "bhwij,bjhwk->bihwk"),
}


def _np_axis_attention(x, kernels, gamma, axis):
    wt, wp, wg, wo = kernels
    q, k, v = x @ wt, x @ wp, x @ wg
    logits_spec, out_spec = _AXIS_SPECS[axis]
    attn = _softmax(np.einsum(logits_spec, q, k), axis=-1)
    return x + gamma * (np.einsum(out_spec, attn, v) @ wo)


def _np_full_attention(x, kernels, gamma):
    wt, wp, wg, wo = kernels
    flat = x.reshape(x.shape[0], -1, x.shape[-1])  # [B, T*H*W, C]
    q, k, v = flat @ wt, flat @ wp, flat @ wg
    attn = _softmax(np.einsum("bik,bjk->bij", q, k), axis=-1)
    return x + gamma * (np.einsum("bij,bjk->bik", attn, v) @ wo).reshape(x.shape)


def _separable_with_gammas(x, gammas):
    """A built SeparableSelfAttention whose three stages have the given non-zero gains."""
    layer = SeparableSelfAttention(kernel_initializer="glorot_normal")
    layer(tf.constant(x))
    for stage, gamma in zip(layer.stages, gammas):
        stage.gamma.assign(gamma)
    return layer


def test_separable_attention_matches_numpy():
    x = _input(0)
    gammas = (0.7, -0.5, 1.3)
    layer = _separable_with_gammas(x, gammas)
    y = layer(tf.constant(x), training=False).numpy()
    ref = x.astype(np.float64)
    for stage, gamma, axis in zip(layer.stages, gammas, ("height", "width", "time")):
        ref = _np_axis_attention(ref, _kernels(stage), gamma, axis)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    assert np.max(np.abs(y - x)) > 0.1  # the attention path contributes


def test_separable_attention_stage_order_matters():
    """A reference with the stages in another order (time first) differs: the test above checks the order."""
    x = _input(0)
    gammas = (0.7, -0.5, 1.3)
    layer = _separable_with_gammas(x, gammas)
    y = layer(tf.constant(x)).numpy()
    ref = x.astype(np.float64)
    for i, axis in ((2, "time"), (0, "height"), (1, "width")):
        ref = _np_axis_attention(ref, _kernels(layer.stages[i]), gammas[i], axis)
    assert np.max(np.abs(y - ref)) > 1e-3


def test_full_attention_matches_numpy():
    x = _input(1)
    layer = SelfAttention(kernel_initializer="glorot_normal")
    layer(tf.constant(x))
    layer.gamma.assign(0.9)
    y, maps = layer(tf.constant(x), training=False, return_attention=True)
    ref = _np_full_attention(x.astype(np.float64), _kernels(layer), 0.9)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-4, atol=1e-4)
    assert maps[0].shape == (B, T * H * W, T * H * W)
    np.testing.assert_allclose(maps[0].numpy().sum(-1), 1.0, atol=1e-5)


def test_single_axis_attention_matches_numpy():
    x = _input(2)
    for axes, name in (((1,), "time"), ((2,), "height"), ((3,), "width")):
        layer = SelfAttention(axes, kernel_initializer="glorot_normal")
        layer(tf.constant(x))
        layer.gamma.assign(-1.1)
        ref = _np_axis_attention(x.astype(np.float64), _kernels(layer), -1.1, name)
        np.testing.assert_allclose(layer(tf.constant(x)).numpy(), ref, rtol=1e-4, atol=1e-4)


def test_separable_attention_maps():
    x = _input(3)
    layer = SeparableSelfAttention()
    y, maps = layer(tf.constant(x), return_attention=True)
    assert y.shape == x.shape
    assert [tuple(m.shape) for m in maps] == [(B * T * W, H, H), (B * T * H, W, W), (B * H * W, T, T)]
    per_sample = [int(np.prod(m.shape)) // B for m in maps]
    assert per_sample == [H * H * W * T, W * W * H * T, T * T * H * W]
    for m in maps:
        m = m.numpy()
        assert np.all(m >= 0)
        np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-5)


def test_separable_height_map_matches_numpy():
    """The first map's row (b, t, w) is the height softmax of that column of the input."""
    x = _input(4)
    layer = SeparableSelfAttention(kernel_initializer="glorot_normal")
    _, maps = layer(tf.constant(x), return_attention=True)
    wt, wp, _, _ = _kernels(layer.stages[0])
    x64 = x.astype(np.float64)
    attn = _softmax(np.einsum("btiwk,btjwk->btwij", x64 @ wt, x64 @ wp))  # [B, T, W, H, H]
    np.testing.assert_allclose(maps[0].numpy(), attn.reshape(B * T * W, H, H), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["separable", "full"])
def test_fresh_layer_is_identity(kind):
    x = _input(5)
    layer = make_attention(kind)
    y = layer(tf.constant(x), training=True).numpy()
    np.testing.assert_array_equal(y, x)
    gammas = [s.gamma for s in layer.stages] if kind == "separable" else [layer.gamma]
    assert all(float(g.numpy()) == 0.0 for g in gammas)
    assert all(g.trainable for g in gammas)


def test_attention_rejects_bad_inputs():
    with pytest.raises(ValueError):
        SelfAttention(axes=(0,))
    with pytest.raises(ValueError):
        SelfAttention()(tf.zeros([2, 3, 4, 4, 4]))  # fewer than 8 channels
    with pytest.raises(ValueError):
        make_attention("bogus")
