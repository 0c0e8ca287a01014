"""Builds DVD-GAN's three networks from the gin configuration and reports their sizes."""
import collections
import math

import keras
import tensorflow as tf

from dvdgan_tf.nets.discriminators import build_spatial_discriminator, build_temporal_discriminator
from dvdgan_tf.nets.generator import build_generator

Networks = collections.namedtuple("Networks", ["G", "D_S", "D_T"])


def build_networks(kernel_initializer="orthogonal"):
    """G, D_S and D_T as gin binds them (gin names ``G``, ``D_S``, ``D_T``); weights are created lazily.

    kernel_initializer: 'orthogonal' as the paper; a cheap one (e.g. 'zeros') when only sizes are wanted.
    """
    return Networks(G=build_generator(kernel_initializer=kernel_initializer),
                    D_S=build_spatial_discriminator(kernel_initializer=kernel_initializer),
                    D_T=build_temporal_discriminator(kernel_initializer=kernel_initializer))


def context_of(generator, video):
    """The context a frame-conditional G (G.context_frames = C > 0) gets for ``video``: its first C frames
    [B, C, H, W, 3]; None for a synthesis G."""
    c = getattr(generator, "context_frames", 0)
    return video[:, :c] if c else None


def _call_all(networks, z, label, video):
    g = networks.G
    return {"G": tuple(g(z, label, context=context_of(g, video)).shape),
            "D_S": tuple(networks.D_S(video, label).shape), "D_T": tuple(networks.D_T(video, label).shape)}


def build_generator_symbolically(generator):
    """Creates a generator's weights by a call on symbolic inputs (batch 1; with a symbolic context for a
    frame-conditional G): no activation is computed. Returns the output shape."""
    g = generator
    c = getattr(g, "context_frames", 0)
    context = keras.Input(shape=(c, g.resolution, g.resolution, 3), batch_size=1, name="context") if c else None
    return tuple(g(keras.Input(shape=(g.z_dim,), batch_size=1), keras.Input(shape=(), batch_size=1, dtype="int32"),
                   context=context).shape)


def build_generator_eagerly(generator):
    """Creates a generator's weights (e.g. the EMA copy's) by one eager inference call on a batch of 1 (zeros,
    with a zero context for a frame-conditional G). Returns the output shape."""
    g = generator
    video = tf.zeros([1, g.num_frames, g.resolution, g.resolution, 3])
    return tuple(g(tf.zeros([1, g.z_dim]), tf.zeros([1], tf.int32), context=context_of(g, video)).shape)


def build_weights_symbolically(networks):
    """Creates every weight by calling the networks on symbolic inputs (batch 1): no activation is computed,
    but tracing takes seconds per network. Returns the output shapes {name: shape}."""
    g = networks.G
    return _call_all(networks, keras.Input(shape=(g.z_dim,), batch_size=1, name="z"),
                     keras.Input(shape=(), batch_size=1, dtype="int32", name="label"),
                     keras.Input(shape=(g.num_frames, g.resolution, g.resolution, 3), batch_size=1, name="video"))


def build_weights_eagerly(networks):
    """Creates every weight by one eager inference call on a batch of 1 (zeros): faster than tracing, at the
    cost of one clip's activations. Returns the output shapes {name: shape}."""
    g = networks.G
    return _call_all(networks, tf.zeros([1, g.z_dim]), tf.zeros([1], tf.int32),
                     tf.zeros([1, g.num_frames, g.resolution, g.resolution, 3]))


def parameter_counts(networks):
    """{name: number of trainable parameters} of built networks (and 'G.encoder', the part of G's count in a
    frame-conditional G's context encoder). The power-iteration vectors and BN moving statistics, which are not
    trained, are not counted."""
    counts = {name: sum(math.prod(v.shape) for v in net.trainable_variables)
              for name, net in networks._asdict().items()}
    if getattr(networks.G, "encoder", None) is not None:  # DVD-GAN-FP: the part of G's count in its encoder
        counts["G.encoder"] = sum(math.prod(v.shape) for v in networks.G.encoder.trainable_variables)
    return counts
