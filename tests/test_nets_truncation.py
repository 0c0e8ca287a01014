"""Truncation: both conventions against scipy's truncated normal (Kolmogorov-Smirnov, fixed seeds), the same z in
eager code, a tf.function with tensor inputs and per-clip draws, and input checks."""
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from dvdgan_tf.errors import ConfigError
from dvdgan_tf.nets import truncation


def reference(convention, t):
    """The convention's distribution from its definition, with scipy: 'resample' N(0, 1) truncated to [-t, t];
    'scaled' t * (N(0, 1) truncated to [-2, 2])."""
    if convention == "resample":
        return scipy.stats.truncnorm(-t, t)
    return scipy.stats.truncnorm(-2.0, 2.0, loc=0.0, scale=t)


@pytest.mark.parametrize("convention", ["resample", "scaled"])
@pytest.mark.parametrize("t", [0.5, 1.5])
def test_draws_follow_scipys_truncated_normal(convention, t):
    z = truncation.latents([40, 100], tf.constant([7, 11]), convention, t).numpy().ravel()  # 4000 draws
    assert scipy.stats.kstest(z, reference(convention, t).cdf).pvalue > 0.01
    other = "scaled" if convention == "resample" else "resample"
    assert scipy.stats.kstest(z, reference(other, t).cdf).pvalue < 1e-6  # the test can tell them apart
    assert np.abs(z).max() <= truncation.bound(convention, t)


def test_no_truncation_is_the_standard_normal_for_both_conventions():
    seed = tf.constant([7, 11])  # the seed of the test above (its p-values over seeds look uniform, as they should)
    plain = tf.random.stateless_normal([40, 100], seed).numpy()
    for convention in truncation.CONVENTIONS:
        for t in (None, 0, 0.0):
            np.testing.assert_array_equal(truncation.latents([40, 100], seed, convention, t).numpy(), plain)
    assert scipy.stats.kstest(plain.ravel(), scipy.stats.norm.cdf).pvalue > 0.01


@pytest.mark.parametrize("convention", ["resample", "scaled"])
def test_graph_draws_with_tensor_inputs_equal_eager_draws(convention):
    @tf.function(input_signature=[tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.float32),
                                  tf.TensorSpec([2], tf.int32)])
    def draw(name, t, seed):
        return truncation.latents([4, 9], seed, name, t)

    seed = tf.constant([2, 0])
    for t in (0.0, 0.8):
        np.testing.assert_array_equal(draw(tf.constant(convention), tf.constant(t), seed).numpy(),
                                      truncation.latents([4, 9], seed, convention, t).numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match="truncation_convention must be"):
        draw(tf.constant("clip"), tf.constant(0.8), seed)


def test_clip_latents_depend_on_seed_and_clip_index_only():
    whole = truncation.clip_latents(3, 0, 6, 7, "scaled", 0.7)
    np.testing.assert_array_equal(truncation.clip_latents(3, 2, 3, 7, "scaled", 0.7), whole[2:5])
    np.testing.assert_array_equal(whole[4], truncation.latents([1, 7], truncation.clip_seed(3, 4), "scaled",
                                                                0.7).numpy()[0])
    assert not np.array_equal(truncation.clip_latents(4, 0, 6, 7, "scaled", 0.7), whole)
    assert np.abs(whole).max() <= 1.4


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="unknown truncation convention 'clip'"):
        truncation.latents([1, 2], tf.constant([0, 0]), "clip", 1.0)
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="finite number >= 0"):
            truncation.check("resample", bad)
