"""Frechet distance against SciPy's general matrix square root, and the streaming moments against NumPy."""
import numpy as np
import pytest
import scipy.linalg

from dvdgan_tf.errors import DataError
from dvdgan_tf.metrics import frechet


def scipy_frechet(x1, x2):
    """Independent reference: np.cov (unbiased) and scipy.linalg.sqrtm of the product, in float64."""
    mu1, mu2 = x1.mean(0), x2.mean(0)
    s1, s2 = np.cov(x1, rowvar=False), np.cov(x2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


@pytest.mark.parametrize("n1,n2,dim", [(200, 300, 16), (500, 400, 64)])
def test_matches_scipy_sqrtm(n1, n2, dim):
    rng = np.random.default_rng(dim)
    mixing = rng.standard_normal((dim, dim))
    x1 = rng.standard_normal((n1, dim)) @ mixing + 1.0
    x2 = rng.standard_normal((n2, dim)) @ (mixing + 0.3 * rng.standard_normal((dim, dim))) - 0.5
    ours = frechet.frechet_distance_from_activations(x1.astype(np.float32), x2.astype(np.float32))
    reference = scipy_frechet(x1.astype(np.float32).astype(np.float64), x2.astype(np.float32).astype(np.float64))
    assert abs(ours - reference) / reference < 1e-6


def test_distance_to_itself_is_zero_and_mean_shift_adds_its_square():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 32)) @ rng.standard_normal((32, 32))
    scale = np.trace(np.cov(x, rowvar=False))
    assert abs(frechet.frechet_distance_from_activations(x, x)) < 1e-9 * scale
    shift = np.zeros(32)
    shift[3] = 2.0
    assert frechet.frechet_distance_from_activations(x, x + shift) == pytest.approx(4.0, abs=1e-8 * scale)


def test_singular_covariances_stay_real_and_finite():
    """Fewer samples than dimensions (as FVD on 16 clips in 400-d): rank-deficient covariances."""
    rng = np.random.default_rng(1)
    x1, x2 = rng.standard_normal((16, 400)), rng.standard_normal((16, 400)) + 0.1
    value = frechet.frechet_distance_from_activations(x1, x2)
    assert np.isfinite(value) and value > 0
    # identical constant sets: only the mean term is left
    c1, c2 = np.zeros((16, 400)), np.full((16, 400), 0.5)
    assert frechet.frechet_distance_from_activations(c1, c2) == pytest.approx(400 * 0.25)


def test_streaming_moments_equal_numpy_for_any_batching():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((257, 8)) * 0.01 + 1e4  # large mean against a small spread
    moments = frechet.RunningMoments(8)
    for start, stop in [(0, 1), (1, 100), (100, 100), (100, 257)]:
        moments.update(x[start:stop])
    assert moments.count == 257
    np.testing.assert_allclose(moments.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(moments.covariance(), np.cov(x, rowvar=False), rtol=1e-6, atol=1e-12)
    restored = frechet.RunningMoments.from_state(moments.state())
    np.testing.assert_array_equal(restored.covariance(), moments.covariance())


def test_bad_inputs_raise():
    moments = frechet.RunningMoments(4)
    with pytest.raises(DataError, match=r"\[n, 4\]"):
        moments.update(np.zeros((3, 5)))
    moments.update(np.zeros((1, 4)))
    with pytest.raises(DataError, match="at least 2 samples"):
        moments.covariance()
    with pytest.raises(DataError, match="matching statistics"):
        frechet.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
