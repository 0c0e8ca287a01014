"""Gradient checkpointing (G.remat, D_S.remat, D_T.remat): the same gradients and the same state updates.

Each network is built twice from one seed, with and without remat, with equal weights; one training-mode
forward and backward pass (in a tf.function, as training runs) must give equal gradients for every trainable
weight and for the input, and leave equal spectral-norm vectors and BatchNorm moving statistics: a recomputed
forward that updated them a second time, or that recomputed with the already updated u, would differ.

Tolerance: the recomputed forward runs the same kernels on the same inputs and gives the same activations;
only the order in which a tensor's gradient contributions are summed may differ (a block's input feeds both
the residual and the skip path), a few float32 roundings: 1e-5 of the network's largest gradient entry (not of
each weight's: the gradient of a conv bias followed by BatchNorm is zero up to rounding, noise on both sides).
"""
import numpy as np
import tensorflow as tf

from dvdgan_tf.nets import blocks
from dvdgan_tf.nets.discriminators import build_spatial_discriminator, build_temporal_discriminator
from dvdgan_tf.nets.generator import build_generator

SIZES = dict(num_classes=3, num_frames=2, resolution=16)
G_SETTINGS = dict(SIZES, ch=4, channel_multipliers=(4, 2, 2), attention_resolutions=(8,))
D_SETTINGS = dict(SIZES, ch=4, channel_multipliers=(1, 2, 2))


def _count_checkpointed(monkeypatch):
    calls = []
    original = blocks.checkpointed
    monkeypatch.setattr(blocks, "checkpointed", lambda fn, *t: calls.append(None) or original(fn, *t))
    return calls


def _twins(build, **settings):
    """The network without and with remat (weights made equal by the caller)."""
    return [build(remat=remat, **settings) for remat in (False, True)]


def _gradients(net, inputs, weights_of_loss, call):
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(inputs[0])
            out = call(net, inputs)
            loss = tf.reduce_sum(out * weights_of_loss)
        return tape.gradient(loss, [inputs[0]] + net.trainable_variables)
    return [g.numpy() for g in step()]


def _state(net):
    return {v.path: v.numpy() for v in net.non_trainable_variables if "frame_seed" not in v.path}


def _assert_same(plain, remat, names):
    scale = max(np.abs(g).max() for g in plain)
    worst = max(np.abs(g1 - g0).max() for g0, g1 in zip(plain, remat)) / scale
    print(f"largest gradient difference / largest gradient: {worst:.3g}")
    for g0, g1, name in zip(plain, remat, names):
        np.testing.assert_allclose(g1, g0, rtol=0, atol=1e-5 * scale, err_msg=name)


def _check(monkeypatch, build, settings, inputs, call, expected_blocks):
    plain, remat = _twins(build, **settings)
    call(plain, inputs, training=False)
    call(remat, inputs, training=False)
    for a, b in zip(remat.variables, plain.variables):
        a.assign(b)
    before = _state(plain)
    weights = tf.random.stateless_normal(call(plain, inputs, training=False).shape, [1, 2])
    g_plain = _gradients(plain, inputs, weights, lambda n, x: call(n, x, training=True))
    calls = _count_checkpointed(monkeypatch)
    g_remat = _gradients(remat, inputs, weights, lambda n, x: call(n, x, training=True))
    assert len(calls) == expected_blocks  # every block checkpointed (traced once)
    _assert_same(g_plain, g_remat, ["input"] + [v.path for v in plain.trainable_variables])
    assert any(np.abs(g).max() > 0 for g in g_plain[1:])
    after_plain, after_remat = _state(plain), _state(remat)
    assert after_plain.keys() == after_remat.keys()
    for name, value in after_plain.items():
        assert not np.array_equal(value, before[name]), f"{name} did not change in training"
        np.testing.assert_allclose(after_remat[name], value, rtol=1e-6, atol=1e-7, err_msg=name)


def test_generator_remat_same_gradients_and_one_update_of_sn_vectors_and_bn_statistics(monkeypatch):
    z = tf.random.stateless_normal([2, 120], [0, 1])
    labels = tf.constant([0, 2])
    call = lambda net, x, training: net(x[0], x[1], training=training)
    # 16 px from 4x4: two groups of two GBlocks.
    _check(monkeypatch, build_generator, G_SETTINGS, (z, labels), call, expected_blocks=4)


def test_discriminators_remat_same_gradients_for_weights_and_input(monkeypatch):
    video = tf.random.stateless_uniform([2, 2, 16, 16, 3], [0, 3], minval=-1.0, maxval=1.0)
    labels = tf.constant([1, 2])
    call_s = lambda net, x, training: net(x[0], x[1], training=training, frame_seed=tf.constant([4, 5]))
    _check(monkeypatch, build_spatial_discriminator, dict(D_SETTINGS, k=2), (video, labels), call_s,
           expected_blocks=3)
    call_t = lambda net, x, training: net(x[0], x[1], training=training)
    _check(monkeypatch, build_temporal_discriminator, D_SETTINGS, (video, labels), call_t, expected_blocks=3)


def test_checkpointed_blocks_get_sigmas_not_kernels(monkeypatch):
    """The remat blocks pass each conv's spectral-norm sigma (a scalar) into the checkpointed function and read the
    kernels inside it, so no kernel-sized tensor (W / sigma, its bfloat16 copy) is an input kept for the backward
    pass: the inputs are the block's input, the cBN gains and biases [B, C] (G) and one scalar per conv."""
    seen = []
    original = blocks.checkpointed
    monkeypatch.setattr(blocks, "checkpointed", lambda fn, *t: seen.append(t) or original(fn, *t))
    g = build_generator(remat=True, **G_SETTINGS)
    d = build_temporal_discriminator(remat=True, **D_SETTINGS)
    z, labels = tf.random.stateless_normal([2, 120], [0, 1]), tf.constant([0, 2])
    video = tf.zeros([2, 2, 16, 16, 3])
    g(z, labels), d(video, labels)  # built (inference calls the layers, not checkpointed)
    g(z, labels, training=True)
    d(video, labels, training=True)
    assert len(seen) == 4 + 3
    for tensors in seen:
        scalars = [t for t in tensors if t.shape.rank == 0]
        others = [t for t in tensors if t.shape.rank != 0]
        assert 2 <= len(scalars) <= 3  # conv1, conv2 and the skip conv where there is one
        assert all(t.shape[0] == 2 for t in others), [t.shape for t in others]  # batch-sized, not kernels
