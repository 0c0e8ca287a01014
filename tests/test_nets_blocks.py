"""Tests of dvdgan_tf.nets.blocks: output shapes and how blocks mix (or do not mix) frames."""
import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.nets.blocks import DBlock, GBlock, avgpool, upsample2x

B, T, H, W = 2, 4, 4, 4


def _video(seed, c, t=T, h=H, w=W):
    return tf.constant(np.random.default_rng(seed).standard_normal((B, t, h, w, c)).astype(np.float32))


def _cond(seed, d=6):
    return tf.constant(np.random.default_rng(seed).standard_normal((B, d)).astype(np.float32))


def _perturb_frame(x, t, seed=99):
    x = x.numpy().copy()
    x[:, t] += np.random.default_rng(seed).standard_normal(x[:, t].shape).astype(np.float32) * 2.0
    return tf.constant(x)


@pytest.mark.parametrize("upsample", [True, False])
@pytest.mark.parametrize("c_in,c_out", [(4, 4), (6, 4)])
def test_gblock_shapes(upsample, c_in, c_out):
    block = GBlock(c_out, upsample=upsample)
    y = block(_video(0, c_in), _cond(1), training=True)
    s = 2 if upsample else 1
    assert y.shape == (B, T, s * H, s * W, c_out)
    assert (block.skip is None) == (c_in == c_out)


def test_gblock_frames_independent():
    block = GBlock(4, upsample=True)
    x, cond = _video(2, 4), _cond(3)
    block(x, cond, training=False)
    state = block.get_weights()
    y = block(x, cond, training=True).numpy()
    block.set_weights(state)
    y2 = block(_perturb_frame(x, 2), cond, training=True).numpy()
    others = [0, 1, 3]
    np.testing.assert_allclose(y2[:, others], y[:, others], rtol=0, atol=1e-5)
    assert np.max(np.abs(y2[:, 2] - y[:, 2])) > 1e-2


def _np_conv2d_same(x, k):
    """x [..., H, W, Ci] (leading axes folded), k [kh, kw, Ci, Co]: stride-1 'SAME' cross-correlation."""
    kh, kw = k.shape[:2]
    lead = x.shape[:-3]
    x = x.reshape((-1,) + x.shape[-3:])
    xp = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = np.zeros(x.shape[:3] + (k.shape[-1],))
    for i in range(kh):
        for j in range(kw):
            out += xp[:, i:i + x.shape[1], j:j + x.shape[2], :] @ k[i, j]
    return out.reshape(lead + out.shape[1:])


def _np_cbn(x, cond, cbn):
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    normed = (x - mean) / np.sqrt(var + cbn.norm.epsilon)
    gain = 1.0 + cond @ cbn.gain.normalized_kernel().numpy().astype(np.float64)
    bias = cond @ cbn.bias.normalized_kernel().numpy().astype(np.float64)
    return normed * gain[:, None, None, None, :] + bias[:, None, None, None, :]


def _np_conv(x, conv):
    return _np_conv2d_same(x, conv.normalized_kernel().numpy().astype(np.float64)) + conv.bias.numpy()


@pytest.mark.parametrize("upsample,c_in", [(True, 6), (False, 4)])
def test_gblock_matches_numpy_reference(upsample, c_in):
    """cBN -> ReLU -> (nearest x2) -> conv3x3 -> cBN -> ReLU -> conv3x3, plus (x2) -> 1x1 conv skip if needed."""
    block = GBlock(4, upsample=upsample, upsample_method="nearest", kernel_initializer="glorot_normal")
    x, cond = _video(4, c_in), _cond(5)
    block(x, cond, training=False)  # builds; leaves u and the moving stats alone
    rng = np.random.default_rng(6)
    convs = [block.conv1, block.conv2] + ([block.skip] if block.skip is not None else [])
    for conv in convs:
        conv.bias.assign(rng.standard_normal(conv.bias.shape).astype(np.float32) * 0.3)
    x64, c64 = x.numpy().astype(np.float64), cond.numpy().astype(np.float64)
    up = (lambda v: v.repeat(2, axis=2).repeat(2, axis=3)) if upsample else (lambda v: v)
    # Reference with the kernels the training call will use (u is only updated after its use).
    h = np.maximum(_np_cbn(x64, c64, block.bn1), 0.0)
    h = _np_conv(up(h), block.conv1)
    h = np.maximum(_np_cbn(h, c64, block.bn2), 0.0)
    h = _np_conv(h, block.conv2)
    skip = up(x64)
    if block.skip is not None:
        skip = _np_conv(skip, block.skip)
    y = block(x, cond, training=True).numpy()
    np.testing.assert_allclose(y, h + skip, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("downsample", [True, False])
@pytest.mark.parametrize("c_in,c_out", [(4, 4), (3, 8)])
def test_dblock_shapes(rank, downsample, c_in, c_out):
    block = DBlock(c_out, rank=rank, downsample=downsample)
    y = block(_video(6, c_in), training=True)
    s = 2 if downsample else 1
    assert y.shape == (B, T, H // s, W // s, c_out)
    assert (block.skip is None) == (c_in == c_out and not downsample)


@pytest.mark.parametrize("preactivation", [True, False])
def test_dblock_pool_time_shape(preactivation):
    block = DBlock(8, rank=3, downsample=True, pool_time=True, preactivation=preactivation)
    y = block(_video(7, 4), training=False)
    assert y.shape == (B, T // 2, H // 2, W // 2, 8)


def test_dblock_pool_time_needs_rank3():
    with pytest.raises(ValueError):
        DBlock(8, rank=2, pool_time=True)


@pytest.mark.parametrize("preactivation", [True, False])
def test_dblock_2d_treats_frames_independently(preactivation):
    block = DBlock(8, rank=2, downsample=True, preactivation=preactivation)
    x = _video(8, 4)
    y = block(x).numpy()
    y2 = block(_perturb_frame(x, 1)).numpy()
    others = [0, 2, 3]
    np.testing.assert_allclose(y2[:, others], y[:, others], rtol=0, atol=1e-6)
    assert np.max(np.abs(y2[:, 1] - y[:, 1])) > 1e-2


def test_dblock_3d_mixes_neighbouring_frames():
    block = DBlock(8, rank=3, downsample=True)
    x = _video(9, 4)
    y = block(x).numpy()
    y2 = block(_perturb_frame(x, 1)).numpy()
    assert np.max(np.abs(y2[:, 2] - y[:, 2])) > 1e-3  # frame t + 1 sees frame t
    assert np.max(np.abs(y2[:, 0] - y[:, 0])) > 1e-3  # and frame t - 1
    # Receptive field of two 3x3x3 convs is 5 frames: with T=4 all frames are reached; frame 3 is 2 away.
    x_long = _video(10, 4, t=7)
    y_long = block(x_long).numpy()
    y_long2 = block(_perturb_frame(x_long, 0)).numpy()
    np.testing.assert_allclose(y_long2[:, 3:], y_long[:, 3:], rtol=0, atol=1e-6)  # 3 frames away: untouched
    assert np.max(np.abs(y_long2[:, 2] - y_long[:, 2])) > 1e-4


def test_upsample_and_pool_helpers_match_numpy():
    x = _video(11, 3).numpy()
    pooled = avgpool(tf.constant(x)).numpy()
    ref = x.reshape(B, T, H // 2, 2, W // 2, 2, 3).mean(axis=(3, 5))
    np.testing.assert_allclose(pooled, ref, rtol=1e-5, atol=1e-6)
    pooled_t = avgpool(tf.constant(x), time=True).numpy()
    ref_t = x.reshape(B, T // 2, 2, H // 2, 2, W // 2, 2, 3).mean(axis=(2, 4, 6))
    np.testing.assert_allclose(pooled_t, ref_t, rtol=1e-5, atol=1e-6)
    up = upsample2x(tf.constant(x), "nearest").numpy()
    np.testing.assert_array_equal(up, x.repeat(2, axis=2).repeat(2, axis=3))
    assert upsample2x(tf.constant(x)).shape == (B, T, 2 * H, 2 * W, 3)
