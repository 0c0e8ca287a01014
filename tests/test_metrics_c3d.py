"""C3D for the UCF-101 Inception Score: the Keras network and tgan2's preprocessing against an independent NumPy
re-implementation of tgan2's Chainer forward pass (narrow random weights in tgan2's file layout), and the errors
for missing files. The real weight files are the user's and are not needed here."""
import itertools

import numpy as np
import pytest

from dvdgan_tf.errors import DataError
from dvdgan_tf.metrics import c3d

WIDTHS = (2, 3, 4, 4, 5, 5, 6, 6)
FC, CLASSES = 7, 5


def chainer_files(tmp_path, seed=0):
    """Random narrow C3D weights as tgan2's npz (Chainer layout: conv W [out, in, 3, 3, 3], fc W [out, in])."""
    rng = np.random.default_rng(seed)
    params, cin = {}, 3
    for name, width in zip(c3d.CONV_NAMES, WIDTHS):
        params[f"{name}/W"] = rng.normal(0, 0.4 / np.sqrt(cin * 27), (width, cin, 3, 3, 3)).astype(np.float32)
        params[f"{name}/b"] = rng.normal(0, 0.1, width).astype(np.float32)
        cin = width
    for name, n_in, n_out in (("fc6", WIDTHS[-1] * 16, FC), ("fc7", FC, FC), ("fc8", FC, CLASSES)):
        params[f"{name}/W"] = rng.normal(0, 1 / np.sqrt(n_in), (n_out, n_in)).astype(np.float32)
        params[f"{name}/b"] = rng.normal(0, 0.1, n_out).astype(np.float32)
    mean = rng.uniform(80, 120, (3, 16, 128, 128)).astype(np.float32)
    np.savez(tmp_path / "conv3d_deepnetA_ucf.npz", **params)
    np.savez(tmp_path / "mean2.npz", mean=mean)
    return params, mean


def np_resize_align_corners(x, size):
    """Chainer resize_images: bilinear, sample points linspace(0, n - 1, size). x [..., H, W]."""
    def weights(n):
        src = np.linspace(0, n - 1, size)
        lo = np.minimum(np.floor(src).astype(int), n - 1)
        hi = np.minimum(lo + 1, n - 1)
        m = np.zeros((size, n))
        m[np.arange(size), lo] += 1 - (src - lo)
        m[np.arange(size), hi] += src - lo
        return m
    return np.einsum("yh,...hw,xw->...yx", weights(x.shape[-2]), x, weights(x.shape[-1]))


def np_conv(x, w, b):
    """x [C, T, H, W], w [O, C, 3, 3, 3], zero padding 1, stride 1 (cross-correlation, as Chainer)."""
    _, t, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (1, 1)))
    out = np.zeros((w.shape[0], t, h, wd))
    for dt, dh, dw in itertools.product(range(3), repeat=3):
        out += np.einsum("oc,cthw->othw", w[:, :, dt, dh, dw], xp[:, dt:dt + t, dh:dh + h, dw:dw + wd])
    return out + b[:, None, None, None]


def np_pool(x, kt, k):
    """Chainer max_pooling_nd with stride = ksize and cover_all=True (a partial window at the end counts)."""
    c, t, h, w = x.shape
    dims = [-(-d // s) for d, s in zip((t, h, w), (kt, k, k))]
    xp = np.full((c, dims[0] * kt, dims[1] * k, dims[2] * k), -np.inf)
    xp[:, :t, :h, :w] = x
    return xp.reshape(c, dims[0], kt, dims[1], k, dims[2], k).max(axis=(2, 4, 6))


def np_c3d_logits(video, params, mean):
    """tgan2's C3DVersion1UCF101 on one video [T, H, W, 3] in [-1, 1] (RGB)."""
    x = np.transpose(video, (3, 0, 1, 2)).astype(np.float64)  # C, T, H, W
    x = 128.0 * x[::-1]  # the 'pre' 1x1 conv: BGR, times 128
    x = np_resize_align_corners(x, 112)
    x = x + 128.0 - mean[:, :, 8:120, 8:120]
    for name in c3d.CONV_NAMES:
        x = np.maximum(np_conv(x, params[f"{name}/W"], params[f"{name}/b"]), 0)
        if name == "conv1a":
            x = np_pool(x, 1, 2)
        elif name in ("conv2a", "conv3b", "conv4b", "conv5b"):
            x = np_pool(x, 2, 2)
    h = x.reshape(-1)
    for name in ("fc6", "fc7", "fc8"):
        h = h @ params[f"{name}/W"].T + params[f"{name}/b"]
        if name != "fc8":
            h = np.maximum(h, 0)
    return h


def test_matches_numpy_reimplementation_of_tgan2(tmp_path):
    params, mean = chainer_files(tmp_path)
    classifier = c3d.load_c3d(str(tmp_path / "conv3d_deepnetA_ucf.npz"), str(tmp_path / "mean2.npz"))
    videos = np.random.default_rng(1).uniform(-1, 1, (2, 16, 20, 24, 3)).astype(np.float32)
    ours = classifier.logits(videos)
    assert ours.shape == (2, CLASSES)
    expected = np.stack([np_c3d_logits(v, params, mean) for v in videos])
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    # uint8 input is the same clip: x / 127.5 - 1
    as_uint8 = np.round((videos + 1) * 127.5).astype(np.uint8)
    np.testing.assert_allclose(classifier.logits(as_uint8), classifier.logits(as_uint8 / 127.5 - 1), rtol=1e-5,
                               atol=1e-5)


def test_missing_or_wrong_files_raise_naming_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("DVDGAN_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="conv3d_deepnetA_ucf.npz.*tgan2"):
        c3d.load_c3d()
    chainer_files(tmp_path)
    np.savez(tmp_path / "bad_mean.npz", mean=np.zeros((3, 8, 128, 128), np.float32))
    with pytest.raises(DataError, match=r"\[3, 16, 128, 128\]"):
        c3d.load_c3d(str(tmp_path / "conv3d_deepnetA_ucf.npz"), str(tmp_path / "bad_mean.npz"))
    classifier = c3d.load_c3d(str(tmp_path / "conv3d_deepnetA_ucf.npz"), str(tmp_path / "mean2.npz"))
    with pytest.raises(DataError, match="16-frame"):
        classifier.logits(np.zeros((1, 12, 32, 32, 3), np.uint8))
