"""Hinge losses against hand-computed values."""
import numpy as np
import tensorflow as tf

from dvdgan_tf.training import losses


def test_hinge_terms():
    s = tf.constant([-2.0, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(losses.hinge_real(s), [3.0, 1.0, 0.5, 0.0])
    np.testing.assert_allclose(losses.hinge_fake(s), [0.0, 1.0, 1.5, 4.0])
    np.testing.assert_allclose(losses.hinge_generator(s), [2.0, 0.0, -0.5, -3.0])


def test_discriminator_loss_sums_both_discriminators():
    ds_real, ds_fake = tf.constant([0.5, 2.0]), tf.constant([-0.5, 1.0])
    dt_real, dt_fake = tf.constant([-1.0, 0.0]), tf.constant([-3.0, 0.2])
    total, terms = losses.discriminator_loss(ds_real, ds_fake, dt_real, dt_fake)
    np.testing.assert_allclose(terms["D_S_real"], [0.5, 0.0])
    np.testing.assert_allclose(terms["D_S_fake"], [0.5, 2.0])
    np.testing.assert_allclose(terms["D_T_real"], [2.0, 1.0])
    np.testing.assert_allclose(terms["D_T_fake"], [0.0, 1.2])
    np.testing.assert_allclose(total, [3.0, 4.2], rtol=1e-6)


def test_generator_loss_sums_both_discriminators():
    np.testing.assert_allclose(losses.generator_loss(tf.constant([1.0, -2.0]), tf.constant([0.5, 0.5])),
                               [-1.5, 1.5])
