"""Hinge GAN losses, per example, for D_S and D_T summed (DVD-GAN section 3.1).

Every function takes discriminator scores [B] (float) and returns per-example losses [B] float32, to be averaged
over the GLOBAL batch by the caller (``tf.nn.compute_average_loss``) under a distribution strategy.
"""
import tensorflow as tf


def hinge_real(scores):
    """D's loss on real data: relu(1 - D(x))."""
    return tf.nn.relu(1.0 - tf.cast(scores, tf.float32))


def hinge_fake(scores):
    """D's loss on generated data: relu(1 + D(G(z)))."""
    return tf.nn.relu(1.0 + tf.cast(scores, tf.float32))


def hinge_generator(scores):
    """G's loss: -D(G(z))."""
    return -tf.cast(scores, tf.float32)


def discriminator_loss(ds_real, ds_fake, dt_real, dt_fake):
    """Summed hinge loss of both discriminators.

    Returns (total [B], terms) where terms maps 'D_S_real', 'D_S_fake', 'D_T_real', 'D_T_fake' to [B] losses.
    """
    terms = {"D_S_real": hinge_real(ds_real), "D_S_fake": hinge_fake(ds_fake),
             "D_T_real": hinge_real(dt_real), "D_T_fake": hinge_fake(dt_fake)}
    return tf.add_n(list(terms.values())), terms


def generator_loss(ds_fake, dt_fake):
    """G's loss against both discriminators: -(D_S(G(z)) + D_T(G(z))), per example [B]."""
    return hinge_generator(ds_fake) + hinge_generator(dt_fake)
