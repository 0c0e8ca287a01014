"""The training loop at tiny size: a few steps, checkpoints and resumption, SIGTERM, NaN handling, outputs."""
import json
import os
import shutil
import subprocess
import sys
import time

import gin
import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf import config
from dvdgan_tf.training import loop as training
from dvdgan_tf.training import run_dir as run_dir_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["NUM_CLASSES = 3", "NUM_FRAMES = 4", "RESOLUTION = 16",
        "G.ch = 4", "G.channel_multipliers = (4, 2, 2)", "G.attention_resolutions = (8,)",
        "D_S.ch = 4", "D_S.channel_multipliers = (1, 2)", "D_S.k = 2",
        "D_T.ch = 4", "D_T.channel_multipliers = (1, 2)",
        "train.global_batch_size = 2", "train.log_every = 1", "train.checkpoint_every = 1",
        "train.sample_every = 0", "train.export_every = 0", "train.export_at_end = False",
        "train.class_accuracy_every = 0",
        "train.d_steps_per_g_step = 1",
        "train.samples_per_class = 1", "train.progress = False",
        # G_ema's standing statistics from 2 batches of 2 clips (not 16 x 16) and exports storing them for one
        # truncation value: these tests check the loop, not the statistics (test_nets_standing_stats does).
        "standing_stats.num_batches = 2", "standing_stats.batch_size = 2",
        "export_generator.standing_truncations = (0.0,)"]


def tiny_config(*extra):
    config.parse_config([os.path.join(REPO, "gin", "demo.gin")], TINY + list(extra))


def checkpoint_steps(model_dir):
    state = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    return sorted(int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny run of 2 steps with checkpoints every step and the class-accuracy monitor on."""
    model_dir = str(tmp_path_factory.mktemp("run"))
    tiny_config("train.num_steps = 2", "train.class_accuracy_every = 2", "train.export_at_end = True",
                "train.class_accuracy_classifier_steps = 2", "train.class_accuracy_samples_per_class = 1")
    return model_dir, training.train(model_dir)


def test_trains_and_writes_run_directory(run_dir):
    model_dir, result = run_dir
    assert result["step"] == 2 and result["stopped_by"] is None
    assert set(result["losses"]) == {"D_S_real", "D_S_fake", "D_T_real", "D_T_fake", "G_loss"}
    assert all(np.isfinite(v) for v in result["losses"].values())
    assert checkpoint_steps(model_dir) == [1, 2]
    assert "G.ch = 4" in open(os.path.join(model_dir, "operative_config.gin")).read()
    assert os.listdir(os.path.join(model_dir, "export")) == ["2"]
    with open(os.path.join(model_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    by_metric = {}
    for r in records:
        by_metric.setdefault(r["metric"], []).append(r)
    assert sorted(by_metric) == ["class_accuracy", "colour_blind_class_accuracy", "first_frame_ratio"]
    for name in ("class_accuracy", "colour_blind_class_accuracy"):
        assert [r["step"] for r in by_metric[name]] == [0, 2] and all(0 <= r["value"] <= 1 for r in by_metric[name])
    assert [r["step"] for r in by_metric["first_frame_ratio"]] == [0, 2]
    assert all(r["value"] > 0 and r["real"] > 0 for r in by_metric["first_frame_ratio"])
    tags = set()
    for event_file in tf.io.gfile.glob(os.path.join(model_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            tags |= {v.tag for v in event.summary.value}
    assert {"loss/D_S_real", "loss/D_T_fake", "loss/G_loss", "speed/clips_per_sec", "speed/steps_per_sec",
            "learning_rate/G", "learning_rate/D", "samples/ema", "eval/class_accuracy",
            "eval/colour_blind_class_accuracy", "eval/first_frame_ratio", "eval/first_frame_ratio_real", "config"} <= tags


def test_checkpoint_holds_the_ema_generator_that_was_exported(run_dir):
    model_dir, _ = run_dir
    restored, step = run_dir_lib.restore_ema_generator(model_dir)
    assert step == 2
    loaded = tf.saved_model.load(os.path.join(model_dir, "export", "2"))
    z, labels = tf.random.normal([2, 120], seed=1), tf.constant([0, 2])
    exported = loaded.signatures["serving_default"](z=z, label=labels, truncation=tf.constant(0.0))["video"]
    np.testing.assert_allclose(restored(z, labels, training=False).numpy(), exported.numpy(), atol=1e-5)


@gin.configurable
def nan_videos(batch_size, num_frames, resolution, num_classes, training=True, seed=0, input_context=None):
    video = tf.fill([batch_size, num_frames, resolution, resolution, 3], float("nan"))
    return tf.data.Dataset.from_tensors((video, tf.zeros([batch_size], tf.int32))).repeat()


def test_nan_loss_stops_naming_step_and_keeps_last_good_checkpoint(run_dir, tmp_path):
    model_dir = str(tmp_path / "run")
    shutil.copytree(run_dir[0], model_dir)
    tiny_config("train.num_steps = 5", "train.dataset_fn = @nan_videos")
    with pytest.raises(training.TrainingDivergedError, match=r"diverged at step 3: D_S_real = nan"):
        training.train(model_dir)
    assert checkpoint_steps(model_dir) == [1, 2]


def test_missing_model_dir_is_a_clear_error():
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run([sys.executable, "-m", "dvdgan_tf.cli.train", "--gin_file=gin/demo.gin"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--model_dir is required" in result.stderr
    assert "Traceback" not in result.stderr


def test_mixed_bfloat16_trains_with_float32_state(tmp_path):
    tiny_config("train.num_steps = 1", "train.mixed_precision = 'mixed_bfloat16'")
    result = training.train(str(tmp_path))
    assert result["step"] == 1 and all(np.isfinite(v) for v in result["losses"].values())
    reader = tf.train.load_checkpoint(str(tmp_path / "checkpoints"))
    dtypes = reader.get_variable_to_dtype_map()
    floating = {dtypes[k] for k in dtypes if k.startswith(("G/", "D_S/", "D_T/")) and dtypes[k].is_floating}
    assert floating == {tf.float32}  # no bfloat16 weight, BN statistic or SN vector
    import keras
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the run


def test_unsupported_precision_is_a_clear_error(tmp_path):
    tiny_config("train.num_steps = 1", "train.mixed_precision = 'mixed_float16'")
    with pytest.raises(config.ConfigError, match="must be None or 'mixed_bfloat16'"):
        training.train(str(tmp_path))


def test_config_whose_dataset_is_missing_stops_at_once_with_the_fix(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    started = time.time()
    result = subprocess.run([sys.executable, "-m", "dvdgan_tf.cli.train", "--gin_file=gin/ucf101.gin",
                             f"--gin_param=prepared_videos.data_dir = '{tmp_path}/ucf101'",
                             f"--model_dir={tmp_path}/run"], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "dvdgan-prepare-data --source=ucf101" in result.stderr
    assert "Traceback" not in result.stderr and "In call to configurable" not in result.stderr
    assert not os.path.exists(tmp_path / "run" / "checkpoints")
    assert time.time() - started < 120  # stopped before building the 310M-parameter model


@pytest.mark.slow  # 45 s of XLA compilation on 2 cores: run with -m slow (the suite's 15-minute budget)
def test_xla_compiled_replica_steps_train(tmp_path):
    """train.jit_compile (for GPU/TPU) compiles the D and G replica steps with XLA; on CPU it must still run."""
    tiny_config("train.num_steps = 1", "train.jit_compile = True")
    result = training.train(str(tmp_path))
    assert result["step"] == 1 and all(np.isfinite(v) for v in result["losses"].values())
