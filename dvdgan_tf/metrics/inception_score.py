"""Inception Score: exp(mean over samples of KL(p(y|x) || p(y))), over splits, in float64.

As TF-GAN's ``classifier_score_from_logits`` and the improved-GAN reference: the samples are cut into
``num_splits`` consecutive, equal parts (the last absorbs the remainder, as ``n * i // splits`` boundaries do),
p(y) is the mean prediction of a part, and the score of each part is reported as mean and standard deviation
(population std, as NumPy's default that the references use).
"""
import numpy as np

from dvdgan_tf.errors import DataError


def log_softmax(logits):
    """Row-wise log-softmax [n, c] in float64."""
    x = np.asarray(logits, np.float64)
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.sum(np.exp(x), axis=1, keepdims=True))


def score_from_log_probs(log_probs):
    """IS of one set of predictions given as log p(y|x) [n, c]."""
    probs = np.exp(log_probs)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_marginal = np.log(np.mean(probs, axis=0))  # -inf for classes no sample predicts
        terms = np.where(probs > 0, probs * (log_probs - log_marginal), 0.0)  # 0 log 0 = 0
    kl = np.sum(terms, axis=1)
    return float(np.exp(np.mean(kl)))


def inception_score(logits, num_splits=10):
    """Inception Score of classifier logits [n, c].

    Returns:
      (mean, std) over ``num_splits`` splits; std is 0.0 for one split.
    Raises:
      DataError if there are fewer samples than splits or logits are not finite.
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2:
        raise DataError(f"logits must be [n, classes], got shape {list(logits.shape)}.")
    n = logits.shape[0]
    if n < num_splits or num_splits < 1:
        raise DataError(f"the Inception Score over {num_splits} splits needs at least {num_splits} samples, got {n}.")
    if not np.all(np.isfinite(logits)):
        raise DataError("logits contain NaN or infinite values.")
    log_probs = log_softmax(logits)
    scores = [score_from_log_probs(log_probs[i * n // num_splits:(i + 1) * n // num_splits])
              for i in range(num_splits)]
    return float(np.mean(scores)), float(np.std(scores))
