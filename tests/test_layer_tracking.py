"""Every variable of G, D_S and D_T (both layouts, with attention everywhere) is part of a tf.train.Checkpoint."""
import pytest
import tensorflow as tf

from dvdgan_tf.nets.discriminators import SpatialDiscriminator, TemporalDiscriminator
from dvdgan_tf.nets.generator import Generator
from dvdgan_tf.nets.layer_tracking import track


def checkpointed_ids(obj):
    return {id(t) for t in tf.train.TrackableView(obj).descendants()}


def built_networks(layout):
    g = Generator(3, 4, 16, ch=4, channel_multipliers=(4, 2, 2), layout=layout, attention_resolutions=(8,))
    ds = SpatialDiscriminator(3, 4, 16, ch=8, channel_multipliers=(1, 2), k=2, attention_resolutions=(8,))
    dt = TemporalDiscriminator(3, 4, 16, ch=8, channel_multipliers=(1, 2), attention_resolutions=(4,))
    g(tf.zeros([1, 120]), tf.zeros([1], tf.int32))
    for d in (ds, dt):
        d(tf.zeros([1, 4, 16, 16, 3]), tf.zeros([1], tf.int32))
    return g, ds, dt


@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_every_variable_is_checkpointed(layout):
    for net in built_networks(layout):
        ids = checkpointed_ids(net)
        missing = [v.path for v in net.variables if id(v) not in ids]
        assert not missing, f"{net.name}: {len(missing)} of {len(net.variables)} variables not checkpointed"


def test_every_variable_of_a_frame_conditional_generator_is_checkpointed():
    """DVD-GAN-FP: the context encoder keeps its blocks and 1x1 convolutions in lists."""
    g = Generator(1, 4, 16, ch=4, channel_multipliers=(4, 2, 2), context_frames=2,
                  encoder={"ch": 4, "channel_multipliers": (1, 2, 2), "channels": 8})
    g(tf.zeros([1, 120]), tf.zeros([1], tf.int32), context=tf.zeros([1, 2, 16, 16, 3]))
    ids = checkpointed_ids(g)
    encoder_variables = [v for v in g.variables if "encoder" in v.path]
    assert len(encoder_variables) > 20  # 3 blocks (2 convs + skip each) and 2 x 2 1x1 convs, kernels, biases, u
    missing = [v.path for v in g.variables if id(v) not in ids]
    assert not missing, f"{len(missing)} of {len(g.variables)} variables not checkpointed: {missing[:3]}"


def test_checkpoint_round_trip_restores_every_weight(tmp_path):
    g, _, _ = built_networks("v2")
    path = tf.train.Checkpoint(G=g).save(str(tmp_path / "ckpt"))
    fresh, _, _ = built_networks("v2")
    tf.train.Checkpoint(G=fresh).restore(path).assert_consumed()
    for a, b in zip(g.variables, fresh.variables):
        tf.debugging.assert_equal(a, b)


def test_track_refuses_a_name_clash():
    parent = tf.Module()
    parent.block = tf.Module()
    other = tf.keras.layers.Dense(1, name="block")
    with pytest.raises(ValueError, match="already has an attribute 'block'"):
        track(parent, other)
