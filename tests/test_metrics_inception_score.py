"""Inception Score: the two closed-form cases, an independent NumPy formula, and the split rule."""
import numpy as np
import pytest

from dvdgan_tf.errors import DataError
from dvdgan_tf.metrics import inception_score


def reference_is(logits):
    """Direct formula: p = softmax, IS = exp(mean_x sum_y p(y|x) (log p(y|x) - log p(y)))."""
    e = np.exp(logits - logits.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    marginal = p.mean(0)
    return np.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), axis=1)))


def test_identical_predictions_score_one():
    logits = np.tile(np.random.default_rng(0).standard_normal(50), (40, 1))
    mean, std = inception_score.inception_score(logits, num_splits=4)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n", [1, 7, 101])
def test_confident_predictions_spread_evenly_score_n(n):
    labels = np.arange(10 * n) % n
    logits = 1000.0 * np.eye(n + 3)[labels]  # one-hot, saturated softmax; 3 classes never predicted
    mean, std = inception_score.inception_score(logits, num_splits=10)
    assert mean == pytest.approx(n, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)


def test_matches_direct_formula_and_splits_are_consecutive_parts():
    logits = np.random.default_rng(1).standard_normal((103, 20)) * 3
    assert inception_score.inception_score(logits, 1)[0] == pytest.approx(reference_is(logits), rel=1e-12)
    parts = [reference_is(logits[i * 103 // 10:(i + 1) * 103 // 10]) for i in range(10)]
    mean, std = inception_score.inception_score(logits, 10)
    assert mean == pytest.approx(np.mean(parts), rel=1e-12) and std == pytest.approx(np.std(parts), rel=1e-9)


def test_bad_inputs_raise():
    with pytest.raises(DataError, match="at least 10 samples"):
        inception_score.inception_score(np.zeros((5, 3)), 10)
    with pytest.raises(DataError, match="non-finite|NaN"):
        inception_score.inception_score(np.full((10, 3), np.nan), 1)
    with pytest.raises(DataError, match=r"\[n, classes\]"):
        inception_score.inception_score(np.zeros(10), 1)
