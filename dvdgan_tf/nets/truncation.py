"""The truncation trick, BigGAN's two conventions, named; one function draws z for every user.

``latents(shape, seed, convention, truncation)`` is the only place z is drawn with truncation: the training
loop's sample grids (``generator.sample_latents``), the SavedModel's ``latents`` / ``sample`` signatures,
``dvdgan-sample`` (through those) and ``dvdgan-eval`` / the in-training metrics (``clip_latents``, clip i's z from
(seed, i) alone) all call it, so the same convention and value give the same z everywhere.

Conventions (t = the truncation value):
  ``resample`` (the BigGAN paper, Brock et al. 2019, section 3.1): z ~ N(0, 1) per entry, values with |z| > t
      redrawn, i.e. N(0, 1) truncated to [-t, t]. The default.
  ``scaled`` (the TF-Hub BigGAN modules' ``truncation`` input): z = t * truncnorm(-2, 2), a standard normal
      truncated to [-2, 2] and scaled by t; so |z| <= 2t and t = 1 is a (mildly) truncated N(0, 1).
No truncation (t = 0 or None) is plain N(0, I) for both. Negative or non-finite t is refused.

Draws are stateless: the same (shape, seed, convention, t) give the same z in eager code, in a tf.function and in
an exported signature (where the convention may be a string tensor and t a float tensor).
"""
import math

import gin
import numpy as np
import tensorflow as tf

from dvdgan_tf.errors import ConfigError

RESAMPLE = "resample"
SCALED = "scaled"
CONVENTIONS = (RESAMPLE, SCALED)
SCALED_BOUND = 2.0  # ``scaled`` draws t * (a standard normal truncated to [-SCALED_BOUND, SCALED_BOUND])


def check(convention, truncation):
    """(convention, t) validated: convention one of CONVENTIONS, t a float >= 0 (None -> 0.0, no truncation).

    Raises ConfigError naming the fix for an unknown convention or a negative / non-finite t.
    """
    if convention not in CONVENTIONS:
        raise ConfigError(f"unknown truncation convention {convention!r}: use 'resample' (the BigGAN paper: "
                          f"values beyond t redrawn) or 'scaled' (TF-Hub BigGAN: t * truncnorm(-2, 2)).")
    t = 0.0 if truncation is None else float(truncation)
    if not math.isfinite(t) or t < 0:
        raise ConfigError(f"truncation must be a finite number >= 0 (0: no truncation), got {truncation!r}.")
    return convention, t


def bound(convention, truncation):
    """The largest |z| a draw can hold: t (resample), 2t (scaled), inf without truncation."""
    convention, t = check(convention, truncation)
    if t == 0:
        return math.inf
    return t if convention == RESAMPLE else SCALED_BOUND * t


def latents(shape, seed, convention=RESAMPLE, truncation=None):
    """z of ``shape`` (float32), drawn statelessly from ``seed`` ([2] int32/int64) under a truncation convention.

    convention: 'resample' or 'scaled' (a Python string, checked, or a scalar string tensor, asserted).
    truncation: None / 0 (no truncation: N(0, I)) or t > 0; a Python number (checked) or a scalar float tensor
      (then t <= 0 means no truncation, as in the export's signatures).
    """
    seed = tf.convert_to_tensor(seed)
    normal = lambda: tf.random.stateless_normal(shape, seed)
    if not tf.is_tensor(truncation) and not tf.is_tensor(convention):
        convention, t = check(convention, truncation)
        if t == 0:
            return normal()
        return _resample(shape, seed, t) if convention == RESAMPLE else _scaled(shape, seed, t)
    t = tf.cast(0.0 if truncation is None else truncation, tf.float32)
    if tf.is_tensor(convention):
        known = tf.reduce_any(tf.equal(convention, tf.constant(CONVENTIONS)))
        with tf.control_dependencies([tf.debugging.Assert(known, [
                "truncation_convention must be resample or scaled; got", convention])]):
            scaled = tf.identity(tf.equal(convention, SCALED))
    else:
        scaled = tf.constant(check(convention, None)[0] == SCALED)
    return tf.cond(t > 0, lambda: tf.cond(scaled, lambda: _scaled(shape, seed, t), lambda: _resample(shape, seed, t)),
                   normal)


def _resample(shape, seed, t):
    return tf.random.stateless_parameterized_truncated_normal(shape, seed, means=0.0, stddevs=1.0, minvals=-t,
                                                              maxvals=t)


def _scaled(shape, seed, t):
    return t * tf.random.stateless_truncated_normal(shape, seed)  # truncated at 2 standard deviations


def clip_seed(seed, index):
    """The stateless seed of generated clip ``index`` under evaluation seed ``seed``: [seed, index] (int64)."""
    return tf.constant([int(seed), int(index)], tf.int64)


def clip_latents(seed, start, n, z_dim, convention=RESAMPLE, truncation=None):
    """NumPy float32 [n, z_dim]: row r is clip (start + r)'s z, ``latents([1, z_dim], clip_seed(seed, start + r),
    convention, truncation)``: a function of (seed, clip index) only, whichever chunk or replica asks for it."""
    convention, t = check(convention, truncation)
    z = np.empty((n, z_dim), np.float32)
    for row in range(n):
        z[row] = latents([1, z_dim], clip_seed(seed, start + row), convention, t).numpy()[0]
    return z


@gin.configurable("truncation")
def sample_grid_truncation(convention=RESAMPLE, value=0.0):
    """(convention, t) of the training loop's sample grids (gin: ``truncation.convention``, ``truncation.value``;
    default: no truncation). The run's exports record this convention."""
    return check(convention, value)
