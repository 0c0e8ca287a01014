"""Evaluation over replicas (metrics.evaluate with a tf.distribute strategy): FVD, FID and IS of a fixed
generator and real set do not depend on the replica count; the pieces that make it so (per-clip inputs, the
moments' merge, the traceable C3D input); and the one-line errors of misuse."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.errors import ConfigError, DataError
from dvdgan_tf.metrics import c3d, classifiers, evaluate, frechet
from dvdgan_tf.nets import truncation

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)


def test_fvd_and_is_equal_on_1_and_2_replicas(tmp_path):
    """No strategy, and MirroredStrategy over 1 and 2 logical CPU devices (set up in a fresh process, tests/replica_metrics_script.py):
    dvdgan-eval's path (an exported generator) and the training-time MetricsMonitor give the same values; the
    1-replica values equal the metrics of the same clips computed directly, in one batch, without chunks."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, os.path.join(TESTS, "replica_metrics_script.py"), str(tmp_path)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert [values[f"eval_{n}"].pop("replicas") for n in (0, 1, 2)] == [1, 1, 2]
    names = ["fvd10_9f", "fid10_9f", "is20_9f", "is20_9f_std"]
    for source in ("eval", "monitor"):
        one, two = values[f"{source}_1"], values[f"{source}_2"]
        assert sorted(one) == sorted(names)
        for name in names:
            assert two[name] == pytest.approx(one[name], rel=1e-6, abs=0), (source, name)
            # Without a strategy (the host path) the same clips are scored: the same values up to float
            # rounding (its last batch is not padded to the chunk size).
            assert values[f"{source}_0"][name] == pytest.approx(one[name], rel=1e-6, abs=1e-9), (source, name)
    for name in ("fvd10_9f", "fid10_9f", "is20_9f"):
        assert values["eval_1"][name] == pytest.approx(values["direct"][name], rel=1e-6), name
    assert values["eval_1"]["fvd10_9f"] > 0 and values["monitor_1"]["fvd10_9f"] > 0
    assert values["eval_1"]["is20_9f"] > 1.0  # not the degenerate IS of identical predictions


def test_merged_moments_are_the_moments_of_all_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (23, 4)) + np.arange(4) * 100  # a mean large against the spread
    parts = [x[:5], x[5:6], x[6:17], x[17:]]
    states = []
    for part in parts:
        m = frechet.RunningMoments(4)
        m.update(part)
        states.append(m)
    merged = evaluate.merge_moments(states + [frechet.RunningMoments(4)])  # an empty state changes nothing
    assert merged.count == 23
    np.testing.assert_allclose(merged.mean, x.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(merged.covariance(), np.cov(x, rowvar=False), rtol=1e-11)
    streamed = frechet.RunningMoments(4)
    for part in parts:
        streamed.update(part)
    assert np.array_equal(streamed.mean, merged.mean) and np.array_equal(streamed.covariance(), merged.covariance())
    with pytest.raises(DataError, match="cannot merge moments of 3-dimensional"):
        merged.merge(frechet.RunningMoments(3))


def test_clip_inputs_depend_on_the_clip_index_and_seed_only():
    z, labels = evaluate.clip_inputs(0, 12, 7, 5, seed=3)
    part_z, part_labels = evaluate.clip_inputs(4, 5, 7, 5, seed=3)
    assert np.array_equal(part_z, z[4:9]) and np.array_equal(part_labels, labels[4:9])
    assert z.dtype == np.float32 and labels.dtype == np.int32 and set(labels) <= set(range(5))
    assert not np.array_equal(evaluate.clip_inputs(0, 12, 7, 5, seed=4)[0], z)
    truncated, _ = evaluate.clip_inputs(0, 50, 7, 5, truncation=0.5, seed=3)
    assert np.abs(truncated).max() <= 0.5 and np.abs(truncated).max() > 0.4
    # Both conventions draw clip i's z with the shared function from (seed, i); labels do not depend on it.
    scaled, scaled_labels = evaluate.clip_inputs(0, 50, 7, 5, truncation=0.5, seed=3, convention="scaled")
    assert 0.5 < np.abs(scaled).max() <= 1.0 and np.array_equal(scaled_labels, evaluate.clip_inputs(0, 50, 7, 5,
                                                                                                    seed=3)[1])
    np.testing.assert_array_equal(scaled[17], truncation.latents([1, 7], truncation.clip_seed(3, 17), "scaled",
                                                                 0.5).numpy()[0])


def test_c3d_input_traces_inside_a_tf_function_and_matches_the_eager_one():
    rng = np.random.default_rng(1)
    mean = c3d.mean_clip(rng.uniform(0, 255, (3, 16, 128, 128)))
    for videos in (rng.integers(0, 256, (2, 16, 20, 24, 3), dtype=np.uint8),
                   rng.uniform(-1, 1, (2, 16, 20, 24, 3)).astype(np.float32)):
        expected = c3d.c3d_input(videos, mean).numpy()
        traced = tf.function(lambda v: c3d.c3d_input_tensor(v, tf.constant(mean)))(tf.constant(videos))
        np.testing.assert_allclose(traced.numpy(), expected, rtol=1e-5, atol=1e-3)


def _tensor_network(videos):
    """A cheap deterministic stand-in for I3D as a TensorFlow function: logits [B, 4], features [B, 3]."""
    per_channel = tf.reduce_mean(videos, axis=[1, 2, 3])
    motion = tf.reduce_mean(tf.abs(videos[:, 1:] - videos[:, :-1]), axis=[1, 2, 3, 4])[:, None]
    logits = tf.concat([3 * per_channel, 5 * motion], axis=1)
    return {"logits": logits, "features": logits[:, :3]}


def _tensor_i3d():
    host = lambda v: {k: t.numpy() for k, t in _tensor_network(tf.convert_to_tensor(v)).items()}
    return classifiers.VideoClassifier(host, "tensor-fake", True, input_size=8, batch_size=4,
                                       tensor_fn=_tensor_network)


def _clips(videos_fn=None):
    return evaluate.GeneratedClips(videos_fn or (lambda z, labels: tf.tanh(tf.reshape(z[:, :1], [-1, 1, 1, 1, 1])
                                                                               * tf.ones([1, 9, 8, 8, 3]))),
                                   z_dim=2, num_classes=3, clip_shape=(9, 8, 8, 3), seed=0)


def test_misuse_over_replicas_is_one_clear_error():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    real = [np.zeros((3, 9, 8, 8, 3), np.uint8)] * 2
    kwargs = dict(i3d=_tensor_i3d(), progress=False, strategy=strategy)
    with pytest.raises(ConfigError, match="needs the generator as a function of the clip index"):
        evaluate.compute_metrics(lambda n: np.zeros((n, 9, 8, 8, 3), np.float32), None, "is10_9f", **kwargs)
    with pytest.raises(ConfigError, match="batch size .* must be a positive integer, got 0"):
        evaluate.compute_metrics(_clips(), None, "is10_9f", batch_size=0, **kwargs)
    with pytest.raises(ConfigError, match="batch size .* must be a positive integer, got 0"):  # looped forever
        evaluate.compute_metrics(_clips().sequential(), None, "is10_9f", batch_size=0, i3d=_tensor_i3d(),
                                 progress=False)
    host_only = classifiers.VideoClassifier(lambda v: None, "host-only", True, input_size=8)
    with pytest.raises(ConfigError, match="host-only runs only on the host"):
        evaluate.compute_metrics(_clips(), None, "is10_9f", **dict(kwargs, i3d=host_only))
    with pytest.raises(DataError, match=r"ended after 6 clips: fvd10_9f needs 10"):
        evaluate.compute_metrics(_clips(), real, "fvd10_9f", batch_size=4, **kwargs)
    with pytest.raises(DataError, match="9 frames but this protocol is defined on 16-frame clips"):
        evaluate.compute_metrics(_clips(), real, "fvd4_16f", **kwargs)
    with pytest.raises(DataError, match=r"values in \[-1, 1\]"):
        evaluate.compute_metrics(_clips(lambda z, labels: 3.0 * tf.ones([tf.shape(z)[0], 9, 8, 8, 3])), None,
                                 "is10_9f", **kwargs)
    values = evaluate.compute_metrics(_clips(), [np.linspace(-1, 1, 5 * 9 * 8 * 8 * 3).reshape(5, 9, 8, 8, 3)
                                                 .astype(np.float32)], "fvd4_9f,is10_9f", batch_size=3, **kwargs)
    assert values["fvd4_9f"] > 0 and values["is10_9f"] >= 1.0


def test_dvdgan_eval_refuses_a_batch_size_below_1(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "dvdgan_tf.cli.eval", f"--export_dir={tmp_path}",
                             "--strategy=mirrored", "--batch_size=0"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "dvdgan-eval: error: --batch_size must be at least 1 (clips per network call, per replica with "
        "--strategy=mirrored), got 0.")
