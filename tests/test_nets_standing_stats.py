"""Standing statistics of the EMA generator (nets/standing_stats.py), G_ema's own spectral norm, and
checkpoints written before per-frame BN statistics."""
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.nets import normalization
from dvdgan_tf.nets.generator import Generator, sample_latents
from dvdgan_tf.nets.spectral_norm import frozen_vectors
from dvdgan_tf.nets import standing_stats
from dvdgan_tf.training import loop, run_dir
from test_training_loop import REPO, tiny_config

TINY = dict(num_classes=3, num_frames=4, resolution=16, ch=4, channel_multipliers=(4, 2, 2),
            attention_resolutions=(8,))


def tiny_generator(seed, initializer="glorot_normal"):
    keras.utils.set_random_seed(seed)
    g = Generator(**TINY, kernel_initializer=initializer)
    g(tf.zeros([1, g.z_dim]), tf.zeros([1], tf.int32))
    return g


def statistics(g):
    return [(layer.moving_mean.numpy(), layer.moving_variance.numpy())
            for layer in standing_stats.batch_norm_layers(g)]


def rel(a, b):
    return np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b ** 2))


def test_generator_inference_with_batch_statistics_equals_training_mode():
    g = tiny_generator(0)
    for layer in standing_stats.batch_norm_layers(g):
        layer.momentum = 0.0  # the moving statistics become the batch's
    z, labels = tf.random.stateless_normal([2, g.z_dim], [1, 2]), tf.constant([0, 2])
    with frozen_vectors():  # the same SN vectors for both calls
        y_train = g(z, labels, training=True).numpy()
    assert all(m.shape[0] == 4 and m.ndim == 2 for m, _ in statistics(g))  # [T, C]
    assert rel(g(z, labels, training=False).numpy(), y_train) < 1e-4


def test_standing_statistics_are_exact_averages_over_the_batches():
    """2 batches: mean = the mean of the batches' means, variance = the mean of their E[x^2] minus mean^2 (not a
    momentum average); the batches' statistics come from training-mode calls on z and labels re-drawn here from
    the documented keys."""
    g = tiny_generator(1)
    standing = standing_stats.recompute(g, seed=5, step=7, num_batches=2, batch_size=2)
    standing = [standing[layer] for layer in standing_stats.batch_norm_layers(g)]
    for layer in standing_stats.batch_norm_layers(g):
        layer.momentum = 0.0
    per_batch = []
    for batch in range(2):
        key = standing_stats._key(5, 7, batch)
        z = sample_latents(2, g.z_dim, seed=tf.random.experimental.stateless_fold_in(key, 0))
        labels = tf.random.stateless_uniform([2], tf.random.experimental.stateless_fold_in(key, 1), maxval=3,
                                             dtype=tf.int32)
        with frozen_vectors():
            g(z, labels, training=True)
        per_batch.append([(m.astype(np.float64), v.astype(np.float64)) for m, v in statistics(g)])
    for (mean, var), (a, b) in zip(standing, zip(*per_batch)):
        want_mean = (a[0] + b[0]) / 2
        want_var = (a[1] + a[0] ** 2 + b[1] + b[0] ** 2) / 2 - want_mean ** 2
        assert rel(mean, want_mean) < 1e-4 and rel(var, want_var) < 1e-4
    assert rel(standing[0][1][0], standing[0][1][-1]) > 1e-2  # frames differ: per-frame statistics matter


def test_ema_statistics_are_its_own_and_sigma_is_that_of_its_weights():
    g, ema = tiny_generator(2), tiny_generator(2)
    standing_stats.recompute(g, seed=0, step=3, num_batches=2, batch_size=2)
    standing_stats.recompute(ema, seed=0, step=3, num_batches=2, batch_size=2)
    for (a, b), (c, d) in zip(statistics(g), statistics(ema)):  # equal weights: equal statistics
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)
    rng = np.random.default_rng(0)
    for v in ema.trainable_variables:  # weights unlike G's (and no longer orthogonal)
        v.assign(v.numpy() * rng.uniform(0.5, 1.5, v.shape).astype(np.float32))
    weights = [v.numpy() for v in ema.trainable_variables]
    standing_stats.recompute(ema, seed=0, step=3, num_batches=2, batch_size=2, sn_start=g)  # as the loop does
    assert all(np.array_equal(w, v.numpy()) for w, v in zip(weights, ema.trainable_variables))
    diffs = [rel(c, a) for (a, _), (c, _) in zip(statistics(g), statistics(ema))]
    assert min(diffs) > 1e-3, diffs
    for layer in standing_stats.spectral_norm_layers(ema):
        w = layer.kernel_matrix().numpy().astype(np.float64)
        true_sigma = np.linalg.svd(w, compute_uv=False)[0]
        estimate = float(tf.linalg.norm(layer.kernel) / tf.linalg.norm(layer.normalized_kernel()))
        assert abs(estimate / true_sigma - 1) < 0.01, (layer.path, estimate, true_sigma)


REPLICAS = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, sys.argv[1])
    from test_nets_standing_stats import statistics, tiny_generator
    from dvdgan_tf.nets import standing_stats

    results = []
    for devices in (None, ["CPU:0", "CPU:1"]):
        strategy = tf.distribute.MirroredStrategy(devices) if devices else tf.distribute.get_strategy()
        with strategy.scope():
            g = tiny_generator(3)
        standing_stats.recompute(g, strategy, seed=1, step=2, num_batches=2, batch_size=4)
        results.append(statistics(g))
    for other in results[1:]:
        for (a, b), (c, d) in zip(results[0], other):
            np.testing.assert_allclose(c, a, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(d, b, rtol=1e-4, atol=1e-5)
    print("REPLICAS_EQUAL")
""")


def test_standing_statistics_equal_on_1_and_2_replicas():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", REPLICAS, os.path.join(REPO, "tests")], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0 and "REPLICAS_EQUAL" in result.stdout, result.stderr[-3000:]


@pytest.fixture(scope="module")
def old_run(tmp_path_factory):
    """A tiny run of 1 step whose networks keep the old per-channel [C] BN statistics."""
    model_dir = str(tmp_path_factory.mktemp("old_run"))
    tiny_config("train.num_steps = 1")
    with normalization.channel_statistics():
        loop.train(model_dir)
    return model_dir


def test_old_checkpoint_is_exported_with_recomputed_statistics(old_run, tmp_path):
    prefix = os.path.join(old_run, "checkpoints", "ckpt-1")
    assert run_dir.has_channel_statistics(prefix)
    generator, step = run_dir.restore_ema_generator(old_run, standing=True)  # what export_checkpoint exports
    assert step == 1
    old = tf.train.load_checkpoint(prefix)
    saved = [old.get_tensor(k) for k in old.get_variable_to_shape_map()
             if k.startswith("G_ema/") and k.endswith("/kernel/.ATTRIBUTES/VARIABLE_VALUE")]
    layers = standing_stats.spectral_norm_layers(generator)
    assert len(saved) == len(layers) > 20
    for layer in layers:  # the weights are the checkpoint's
        assert any(t.shape == layer.kernel.shape and np.array_equal(t, layer.kernel.numpy()) for t in saved)
        w = layer.kernel_matrix().numpy().astype(np.float64)  # and sigma is that of the weights
        estimate = float(tf.linalg.norm(layer.kernel) / tf.linalg.norm(layer.normalized_kernel()))
        assert abs(estimate / np.linalg.svd(w, compute_uv=False)[0] - 1) < 0.01
    stats = statistics(generator)
    assert stats[0][0].shape[0] == 4 and stats[0][0].ndim == 2 and rel(stats[0][1][0], stats[0][1][-1]) > 1e-2  # per frame, own
    path, step = run_dir.export_checkpoint(old_run, str(tmp_path / "export"))
    z, labels = tf.random.stateless_normal([2, 120], [3, 4]), tf.constant([0, 1])
    video = tf.saved_model.load(path).signatures["serving_default"](z=z, label=labels,
                                                                    truncation=tf.constant(0.0))["video"]
    np.testing.assert_allclose(video.numpy(), generator(z, labels).numpy(), atol=1e-5)


def test_old_checkpoint_resumes_training(old_run):
    tiny_config("train.num_steps = 2")
    assert loop.train(old_run)["step"] == 2
    new = os.path.join(old_run, "checkpoints", "ckpt-2")
    assert not run_dir.has_channel_statistics(new)
    shapes = tf.train.load_checkpoint(new).get_variable_to_shape_map()
    assert all(len(s) == 2 for k, s in shapes.items() if k.endswith("moving_mean/.ATTRIBUTES/VARIABLE_VALUE"))
