"""Tests of dvdgan_tf.nets.normalization: per-frame BN statistics, conditional gain/bias, moving stats, cross-replica."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

from dvdgan_tf.nets.normalization import ConditionalBatchNorm, FrameBatchNorm

SHAPE = (2, 3, 4, 5, 6)  # B, T, H, W, C


def _video(seed, shape=SHAPE, scale=2.0, offset=1.0):
    rng = np.random.default_rng(seed)
    # Different mean/scale per frame and channel so per-frame statistics matter.
    per = rng.uniform(0.5, 3.0, size=(1, shape[1], 1, 1, shape[4]))
    return (rng.standard_normal(shape) * scale * per + offset * per).astype(np.float32)


def _np_per_frame_norm(x, eps):
    x = x.astype(np.float64)
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def test_frame_batch_norm_training_matches_numpy():
    x = _video(0)
    layer = FrameBatchNorm(epsilon=1e-3)
    y = layer(tf.constant(x), training=True).numpy()
    np.testing.assert_allclose(y, _np_per_frame_norm(x, 1e-3), rtol=1e-4, atol=1e-4)
    # Whole-clip statistics would give a different answer: the per-frame structure matters.
    whole = (x - x.mean(axis=(0, 1, 2, 3))) / np.sqrt(x.var(axis=(0, 1, 2, 3)) + 1e-3)
    assert np.max(np.abs(y - whole)) > 0.1


def test_frame_batch_norm_moving_statistics():
    x = _video(1)
    layer = FrameBatchNorm(momentum=0.9, epsilon=1e-4)
    y_inf = layer(tf.constant(x), training=False).numpy()  # builds; no update in inference
    stats_shape = (SHAPE[1], SHAPE[4])  # per frame and channel
    assert layer.moving_mean.shape == stats_shape and layer.moving_variance.shape == stats_shape
    np.testing.assert_array_equal(layer.moving_mean.numpy(), np.zeros(stats_shape))
    np.testing.assert_array_equal(layer.moving_variance.numpy(), np.ones(stats_shape))
    np.testing.assert_allclose(y_inf, x / np.sqrt(1.0 + 1e-4), rtol=1e-5, atol=1e-5)

    layer(tf.constant(x), training=True)
    x64 = x.astype(np.float64)
    exp_mean = 0.1 * x64.mean(axis=(0, 2, 3))  # [T, C]
    exp_var = 0.9 * 1.0 + 0.1 * x64.var(axis=(0, 2, 3))
    np.testing.assert_allclose(layer.moving_mean.numpy(), exp_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), exp_var, rtol=1e-4, atol=1e-5)

    # Inference normalises frame t with the moving statistics of frame t.
    x_other = _video(2)
    y = layer(tf.constant(x_other), training=False).numpy()
    expected = (x_other - exp_mean[None, :, None, None, :]) / np.sqrt(exp_var[None, :, None, None, :] + 1e-4)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.moving_mean.numpy(), exp_mean, rtol=1e-4, atol=1e-5)


def test_perturbing_frame_t_changes_only_frame_t_statistics():
    x = _video(8)
    layers = [FrameBatchNorm(momentum=0.5) for _ in range(2)]
    x2 = x.copy()
    t = 2
    x2[:, t] = x2[:, t] * 1.7 + 0.5
    for layer, video in zip(layers, (x, x2)):
        layer(tf.constant(video), training=True)
    for name in ("moving_mean", "moving_variance"):
        a, b = (getattr(layer, name).numpy() for layer in layers)
        others = [f for f in range(SHAPE[1]) if f != t]
        np.testing.assert_array_equal(a[others], b[others])
        assert np.min(np.abs(a[t] - b[t])) > 1e-3, name  # every channel of frame t moved


def test_inference_with_the_batch_statistics_equals_training_mode():
    """momentum 0: the moving statistics become those of the batch; inference on that batch then equals the
    training-mode output (the old per-channel statistics missed it by a lot on frames unlike the average)."""
    x = _video(9)
    layer = FrameBatchNorm(momentum=0.0)
    y_train = layer(tf.constant(x), training=True).numpy()
    y_inf = layer(tf.constant(x), training=False).numpy()
    assert np.sqrt(np.mean((y_inf - y_train) ** 2)) / np.sqrt(np.mean(y_train ** 2)) < 1e-4
    np.testing.assert_allclose(y_train, _np_per_frame_norm(x, layer.epsilon), rtol=1e-4, atol=1e-4)


def test_channel_statistics_layout_is_the_old_one():
    from dvdgan_tf.nets.normalization import channel_statistics
    x = _video(10)
    with channel_statistics():
        layer = FrameBatchNorm(momentum=0.0)
        layer(tf.constant(x), training=True)
    assert layer.moving_mean.shape == (SHAPE[4],)
    np.testing.assert_allclose(layer.moving_mean.numpy(), x.astype(np.float64).mean(axis=(0, 2, 3)).mean(0),
                               rtol=1e-4, atol=1e-5)
    after = FrameBatchNorm()
    after(tf.constant(x))
    assert after.moving_mean.shape == (SHAPE[1], SHAPE[4])  # per frame again outside the context


def _built_cbn(x, cond):
    layer = ConditionalBatchNorm(kernel_initializer="glorot_normal")
    layer(tf.constant(x), tf.constant(cond), training=False)  # builds without touching any state
    return layer


def test_conditional_batch_norm_frames_are_independent():
    x = _video(3)
    cond = np.random.default_rng(4).standard_normal((SHAPE[0], 7)).astype(np.float32)
    layer = _built_cbn(x, cond)
    state = layer.get_weights()  # a training call updates u and the moving stats: restore them between calls
    y_a = layer(tf.constant(x), tf.constant(cond), training=True).numpy()
    layer.set_weights(state)
    t_pert = 1
    x2 = x.copy()
    x2[:, t_pert] = x2[:, t_pert] * 3.0 + np.random.default_rng(5).standard_normal(x2[:, t_pert].shape)
    y_b = layer(tf.constant(x2), tf.constant(cond), training=True).numpy()
    assert y_a.shape == SHAPE
    others = [t for t in range(SHAPE[1]) if t != t_pert]
    np.testing.assert_allclose(y_b[:, others], y_a[:, others], atol=1e-6, rtol=0)
    assert np.max(np.abs(y_b[:, t_pert] - y_a[:, t_pert])) > 1e-2


def test_conditional_batch_norm_gain_and_bias():
    x = _video(6)
    rng = np.random.default_rng(7)
    cond = rng.standard_normal((SHAPE[0], 7)).astype(np.float32)
    layer = _built_cbn(x, cond)
    # The kernels the training call uses: W / sigma with the current u (u is updated after use).
    wg = layer.gain.normalized_kernel().numpy().astype(np.float64)
    wb = layer.bias.normalized_kernel().numpy().astype(np.float64)
    assert wg.shape == (7, SHAPE[4]) and wb.shape == (7, SHAPE[4])
    y = layer(tf.constant(x), tf.constant(cond), training=True).numpy()
    normed = _np_per_frame_norm(x, layer.norm.epsilon)
    c = cond.astype(np.float64)
    gain = 1.0 + c @ wg  # [B, C]
    bias = c @ wb
    expected = normed * gain[:, None, None, None, :] + bias[:, None, None, None, :]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    # Per-sample: the two samples get different gains.
    assert np.max(np.abs(gain[0] - gain[1])) > 1e-2


def test_cross_replica_statistics_match_single_device():
    code = textwrap.dedent("""
        import numpy as np
        import tensorflow as tf
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
        from dvdgan_tf.nets.normalization import FrameBatchNorm

        rng = np.random.default_rng(0)
        per = rng.uniform(0.5, 3.0, size=(1, 3, 1, 1, 4))
        x = (rng.standard_normal((4, 3, 4, 4, 4)) * per + per).astype(np.float32)
        # Make the two halves differ, so per-replica statistics would be visibly wrong.
        x[2:] = x[2:] * 2.0 + 1.5

        single = FrameBatchNorm(momentum=0.5)
        expected = single(tf.constant(x), training=True).numpy()

        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        assert strategy.num_replicas_in_sync == 2
        with strategy.scope():
            layer = FrameBatchNorm(momentum=0.5)
            layer.build(x.shape)
        dist_x = strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(x[2 * ctx.replica_id_in_sync_group: 2 * ctx.replica_id_in_sync_group + 2]))

        @tf.function
        def step(inp):
            return strategy.run(lambda v: layer(v, training=True), args=(inp,))

        out = strategy.experimental_local_results(step(dist_x))
        got = np.concatenate([o.numpy() for o in out], axis=0)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
        # Normalising each replica's half alone gives a different result.
        local = np.concatenate([single(tf.constant(x[:2]), training=True).numpy(),
                                single(tf.constant(x[2:]), training=True).numpy()])
        assert np.max(np.abs(local - expected)) > 0.1
        np.testing.assert_allclose(layer.moving_mean.numpy(), 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-4, atol=1e-5)
        print("CROSS_REPLICA_OK")
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0 and "CROSS_REPLICA_OK" in result.stdout, result.stdout + result.stderr[-4000:]
