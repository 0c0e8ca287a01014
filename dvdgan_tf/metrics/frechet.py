"""Frechet distance between Gaussians fitted to activations, and their streaming (constant-memory) moments.

FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrt(S1 S2)), everything in float64, S the unbiased (N - 1)
covariance: the formula of TF-GAN's ``frechet_classifier_distance_from_activations`` that the FVD reference
calls. tr(sqrt(S1 S2)) is computed as TF-GAN does, through symmetric square roots:
tr(sqrt(S1 S2)) = tr(sqrt(A S2 A)) with A = sqrt(S1), which stays real and stable for the singular covariances
that few samples in many dimensions give (eigenvalues below 1e-10, round-off, count as 0).
"""
import numpy as np

from dvdgan_tf.errors import DataError


class RunningMoments:
    """Mean and covariance of d-dimensional activations, fed in batches, in float64.

    Memory is O(d^2) whatever the number of samples. Batches are merged with Chan et al.'s pairwise update
    (sums of centred outer products), which keeps full precision even when the mean is large against the
    spread.
    """

    def __init__(self, dim):
        self.dim = dim
        self.count = 0
        self._mean = np.zeros(dim, np.float64)
        self._m2 = np.zeros((dim, dim), np.float64)  # sum over samples of (x - mean)(x - mean)^T

    def update(self, activations):
        """Adds activations [n, dim] (any float dtype)."""
        x = np.asarray(activations, np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise DataError(f"activations must be [n, {self.dim}], got {list(x.shape)}.")
        n = x.shape[0]
        if n == 0:
            return
        batch = RunningMoments(self.dim)
        batch.count, batch._mean = n, x.mean(axis=0)
        centred = x - batch._mean
        batch._m2 = centred.T @ centred
        self.merge(batch)

    def merge(self, other):
        """Adds the samples another RunningMoments of the same dim summarises (Chan et al.'s pairwise formula,
        exact up to float64 round-off). Merging the same states in the same order gives bitwise the same result,
        which is how metrics over replicas stay independent of the replica count (``metrics.evaluate``)."""
        if other.dim != self.dim:
            raise DataError(f"cannot merge moments of {other.dim}-dimensional activations into {self.dim}-dimensional "
                            f"ones.")
        n = other.count
        if n == 0:
            return self
        total = self.count + n
        delta = other._mean - self._mean
        self._m2 += other._m2 + np.outer(delta, delta) * (self.count * n / total)
        self._mean += delta * (n / total)
        self.count = total
        return self

    @property
    def mean(self):
        """[dim] float64."""
        return self._mean.copy()

    def covariance(self):
        """[dim, dim] float64 unbiased (count - 1) covariance. Needs at least 2 samples."""
        if self.count < 2:
            raise DataError(f"a covariance needs at least 2 samples, got {self.count}.")
        return self._m2 / (self.count - 1)

    def state(self):
        """A dict of arrays that ``from_state`` restores (for caching real-data statistics)."""
        return {"count": np.asarray(self.count, np.int64), "mean": self._mean, "m2": self._m2}

    @classmethod
    def from_state(cls, state):
        moments = cls(int(np.asarray(state["mean"]).shape[0]))
        moments.count = int(state["count"])
        moments._mean = np.array(state["mean"], np.float64)
        moments._m2 = np.array(state["m2"], np.float64)
        return moments


def symmetric_sqrt(matrix, eps=1e-10):
    """Square root of a symmetric positive semi-definite matrix; eigenvalues below eps are treated as 0."""
    matrix = (matrix + matrix.T) / 2.0
    values, vectors = np.linalg.eigh(matrix)
    roots = np.sqrt(np.where(values < eps, 0.0, values))
    return (vectors * roots) @ vectors.T


def trace_sqrt_product(sigma1, sigma2):
    """tr(sqrt(sigma1 sigma2)) for symmetric PSD matrices, as tr(sqrt(A sigma2 A)), A = sqrt(sigma1)."""
    a = symmetric_sqrt(sigma1)
    inner = a @ sigma2 @ a
    values = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    return float(np.sum(np.sqrt(np.clip(values, 0.0, None))))


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), float64 throughout."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise DataError(f"Frechet distance needs matching statistics, got means {mu1.shape}, {mu2.shape} and "
                        f"covariances {sigma1.shape}, {sigma2.shape}.")
    mean_term = float(np.sum((mu1 - mu2) ** 2))
    trace_term = float(np.trace(sigma1) + np.trace(sigma2)) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return mean_term + trace_term


def frechet_distance_from_moments(moments1, moments2):
    """Frechet distance between two RunningMoments."""
    return frechet_distance(moments1.mean, moments1.covariance(), moments2.mean, moments2.covariance())


def frechet_distance_from_activations(activations1, activations2):
    """Frechet distance between Gaussians fitted to activations [n1, d] and [n2, d] (n >= 2 each)."""
    moments = []
    for acts in (activations1, activations2):
        acts = np.asarray(acts)
        if acts.ndim != 2:
            raise DataError(f"activations must be [n, d], got shape {list(acts.shape)}.")
        m = RunningMoments(acts.shape[1])
        m.update(acts)
        moments.append(m)
    return frechet_distance_from_moments(*moments)
