"""Reproducible runs and exact resume: the same seed gives the same weights, and 3 steps + a stop + 3 resumed
steps give the weights of 6 uninterrupted steps, for every variable of G, D_S, D_T, G_ema and both optimizers.

Equality is exact (bit for bit): every source of randomness is keyed by (seed, step) or (seed, example index),
initial weights come from train.seed, and train.deterministic asks TensorFlow for deterministic kernels, so no
tolerance is needed. Under MirroredStrategy the two replicas' gradients are summed in a fixed order, so that holds
there too."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from data_video_fixtures import prepare_ucf101
from dvdgan_tf.nets.generator import build_generator
from dvdgan_tf.training import loop
from test_training_loop import REPO, tiny_config

NETWORKS = ("G/", "G_ema/", "D_S/", "D_T/", "g_optimizer/", "d_optimizer/", "step/")


def checkpoint_tensors(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k.startswith(NETWORKS)}


def assert_identical(a, b):
    assert a.keys() == b.keys()
    for prefix in NETWORKS:  # every part of the state is there
        assert any(k.startswith(prefix) for k in a), prefix
    different = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not different, f"{len(different)} of {len(a)} tensors differ, e.g. {different[:3]}"


def six_versus_three_plus_three(base, train, *bindings):
    """Runs 6 steps (checkpoints at 3 and 6), then 3 steps and 3 resumed ones in another folder, by calling
    ``train(model_dir, bindings)``; asserts ckpt-3 and ckpt-6 of both are identical."""
    whole, halves = os.path.join(base, "whole"), os.path.join(base, "halves")
    train(whole, [*bindings, "train.num_steps = 6", "train.checkpoint_every = 3"])
    train(halves, [*bindings, "train.num_steps = 3", "train.checkpoint_every = 3"])
    train(halves, [*bindings, "train.num_steps = 6", "train.checkpoint_every = 3"])
    for step in (3, 6):  # 3: two runs of the same seed agree; 6: the resumed run agrees with the whole one
        assert_identical(checkpoint_tensors(os.path.join(whole, "checkpoints", f"ckpt-{step}")),
                         checkpoint_tensors(os.path.join(halves, "checkpoints", f"ckpt-{step}")))
    return whole


def _tiny_train(model_dir, bindings):
    tiny_config("train.deterministic = True", *bindings)
    loop.train(model_dir)


def test_embedded_data_one_device(tmp_path):
    six_versus_three_plus_three(str(tmp_path), _tiny_train)


def test_initial_weights_come_from_the_seed():
    tiny_config()
    weights = {}
    for run, seed in enumerate((0, 0, 1)):
        loop._seed_everything(seed, deterministic=False)
        generator = build_generator()
        generator(tf.zeros([1, generator.z_dim]), tf.zeros([1], tf.int32))
        weights[run] = [v.numpy() for v in generator.weights]
    assert all(np.array_equal(a, b) for a, b in zip(weights[0], weights[1]))  # same seed, same weights
    kernels = [i for i, w in enumerate(weights[0]) if w.size > 1 and np.std(w) > 0]
    assert sum(not np.array_equal(weights[0][i], weights[2][i]) for i in kernels) == len(kernels)


@pytest.fixture(scope="module")
def prepared_ucf(tmp_path_factory):
    return prepare_ucf101(tmp_path_factory)[0]


MIRRORED = """
import os, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, os.path.join(sys.argv[1], "tests"))
from test_training_loop import tiny_config
from test_training_reproducibility import six_versus_three_plus_three
from dvdgan_tf.training import loop

def train(model_dir, bindings):
    tiny_config("train.deterministic = True", "train.global_batch_size = 4", "train.dataset_fn = @prepared_videos",
                f"prepared_videos.data_dir = '{sys.argv[3]}'", *bindings)
    loop.train(model_dir, strategy=tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"]))

six_versus_three_plus_three(sys.argv[2], train)
print("IDENTICAL")
"""


@pytest.mark.slow  # 1.5-2.5 min on 2 cores: run with -m slow (the suite's 15-minute budget)
def test_prepared_data_two_replicas_mirrored(tmp_path, prepared_ucf):
    """Prepared data (4 training videos: the 3+3 run resumes in the middle of an epoch, batches of 4 cross
    epochs) under MirroredStrategy on 2 logical CPU devices, each replica taking half of every global batch."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", MIRRORED, REPO, str(tmp_path), prepared_ucf], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "IDENTICAL" in result.stdout, result.stderr[-3000:]


@pytest.mark.slow  # 1.5-2.5 min on 2 cores: run with -m slow (the suite's 15-minute budget)
def test_demo_config_is_deterministic_across_processes_and_resumes_exactly(tmp_path):
    """gin/demo.gin as shipped (monitors and the final export off: they change no training state), each run its
    own dvdgan-train process: 6 steps, then 3 steps and 3 resumed ones."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def train(model_dir, bindings):
        params = [*bindings, "train.sample_every = 0", "train.class_accuracy_every = 0", "train.progress = False",
                  "train.export_at_end = False", "standing_stats.num_batches = 2"]
        result = subprocess.run([sys.executable, "-m", "dvdgan_tf.cli.train", "--gin_file=gin/demo.gin",
                                 f"--model_dir={model_dir}", *[f"--gin_param={p}" for p in params]],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]

    six_versus_three_plus_three(str(tmp_path), train)
