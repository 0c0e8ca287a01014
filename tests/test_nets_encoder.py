"""DVD-GAN-FP's context encoder (nets/encoder.py) and the frame-conditional generator (G.context_frames)."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf import config
from dvdgan_tf.nets import networks as models
from dvdgan_tf.nets.generator import Generator

GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gin")
TINY_ENCODER = {"ch": 4, "channel_multipliers": (1, 2, 2), "channels": 8}


def tiny_fp_generator(context_frames=2, layout="v2", seed=0):
    keras.utils.set_random_seed(seed)
    return Generator(1, 4, 16, ch=4, channel_multipliers=(4, 2, 2), layout=layout, attention_resolutions=(8,),
                     kernel_initializer="glorot_normal", context_frames=context_frames, encoder=TINY_ENCODER)


def inputs(seed, context_frames=2):
    rng = np.random.default_rng(seed)
    z = tf.constant(rng.standard_normal([2, 120]), tf.float32)
    context = tf.constant(rng.uniform(-1, 1, [2, context_frames, 16, 16, 3]), tf.float32)
    return z, tf.zeros([2], tf.int32), context


# Per config: C, and G's ConvGRU widths at 4, 8, 16, 32 px (ch 128 times the 64-px multipliers 8, 8, 4, 2 of
# architecture.py's table, written out).
FP_CONFIGS = {"bair_fp.gin": (1, 16), "kinetics600_fp.gin": (5, 16)}
STATE_SHAPES_64 = [(4, 4, 1024), (8, 8, 1024), (16, 16, 512), (32, 32, 256)]


@pytest.mark.parametrize("name", sorted(FP_CONFIGS))
def test_encoder_gives_each_convgru_a_state_of_its_shape(name):
    """Full-size configs, the encoder built symbolically (no activations, zero initialiser): one state per
    ConvGRU, at its resolution and width. (G's whole output shape: test_nets_paper_configs' dry runs.)"""
    context_frames, frames = FP_CONFIGS[name]
    config.parse_config([os.path.join(GIN_DIR, name)], [])
    g = models.build_networks(kernel_initializer="zeros").G
    assert g.context_frames == context_frames and g.num_frames == frames and g.rendered_frames == frames - context_frames
    context = keras.Input(shape=(context_frames, 64, 64, 3), batch_size=1)
    states = g.encoder(context)
    assert [tuple(s.shape) for s in states] == [(1,) + s for s in STATE_SHAPES_64]
    assert [tuple(gru.channels for gru in g.grus)] == [tuple(s[-1] for s in STATE_SHAPES_64)]


@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_context_is_copied_in_and_reaches_the_rendered_frames_only_through_the_initial_states(layout):
    g = tiny_fp_generator(layout=layout)
    z, labels, context = inputs(0)
    _, _, other = inputs(1)
    video = g(z, labels, context=context).numpy()
    assert video.shape == (2, 4, 16, 16, 3)
    np.testing.assert_array_equal(video[:, :2], context.numpy())  # the context, copied in unchanged
    assert np.abs(video[:, 2:]).max() <= 1.0
    # The encoder's states of `context` with the other context copied in: the rendered frames are those of
    # `context`, so the context acts on them through the ConvGRUs' initial states alone.
    states = g.encoder(context)
    assert len(states) == (2 if layout == "v2" else 1)  # one per ConvGRU (v2: 4 and 8 px; 16 px is the output)
    steered = g(z, labels, context=other, initial_states=states).numpy()
    np.testing.assert_allclose(steered[:, 2:], video[:, 2:], atol=1e-6)
    np.testing.assert_array_equal(steered[:, :2], other.numpy())
    # ... and another context changes the first rendered frame.
    moved = g(z, labels, context=other).numpy()
    assert np.abs(moved[:, 2] - video[:, 2]).mean() > 1e-3


def test_state_shapes_of_the_tiny_generator():
    g = tiny_fp_generator()
    states = g.encoder(inputs(0)[2])
    # ConvGRU widths ch * (4, 2): 16 at 4 px, 8 at 8 px; the encoder's 1x1 reduction to `channels` = 8 first.
    assert [tuple(s.shape) for s in states] == [(2, 4, 4, 16), (2, 8, 8, 8)]


def test_encoder_variables_are_generator_variables():
    g = tiny_fp_generator()
    z, labels, context = inputs(0)
    g(z, labels, context=context)
    encoder_ids = {id(v) for v in g.encoder.trainable_variables}
    assert encoder_ids and encoder_ids <= {id(v) for v in g.trainable_variables}
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(g(z, labels, context=context, training=True)[:, 2:] ** 2)
    grads = tape.gradient(loss, g.encoder.trainable_variables)
    assert all(gr is not None for gr in grads) and any(float(tf.reduce_max(tf.abs(gr))) > 0 for gr in grads)


def test_synthesis_generator_is_unchanged_and_refuses_a_context():
    keras.utils.set_random_seed(0)
    plain = Generator(1, 4, 16, ch=4, channel_multipliers=(4, 2, 2), attention_resolutions=(8,))
    z, labels, context = inputs(0)
    assert plain.context_frames == 0 and plain.encoder is None and plain.rendered_frames == 4
    assert plain(z, labels).shape == (2, 4, 16, 16, 3)
    assert not [v for v in plain.variables if "encoder" in v.path]
    with pytest.raises(ValueError, match="context_frames is 0"):
        plain(z, labels, context=context)


def test_missing_or_misshapen_context_names_the_expected_shape():
    g = tiny_fp_generator()
    z, labels, context = inputs(0)
    with pytest.raises(ValueError, match=r"context=\[batch, 2, 16, 16, 3\]"):
        g(z, labels)
    with pytest.raises(ValueError, match=r"context shaped \[batch, 2, 16, 16, 3\].*got shape \[2, 3, 16, 16, 3\]"):
        g(z, labels, context=tf.zeros([2, 3, 16, 16, 3]))


def test_context_frames_must_leave_frames_to_render():
    with pytest.raises(ValueError, match="context_frames"):
        Generator(1, 4, 16, ch=4, channel_multipliers=(4, 2, 2), context_frames=4, encoder=TINY_ENCODER)
