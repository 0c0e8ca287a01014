"""Test setup shared by all test files: keep TensorFlow's C++ logging quiet."""
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


TINY_G_BINDINGS = ("NUM_CLASSES = 3", "NUM_FRAMES = 3", "RESOLUTION = 16", "G.ch = 4",
                   "G.channel_multipliers = (4, 2, 2)", "G.attention_resolutions = (8,)")


def _make_tiny_run_dir(model_dir):
    """A model_dir as dvdgan-train lays it out (operative_config.gin, checkpoints/ckpt-<step> with ``step`` and
    ``G_ema``), for a 3-class, 3-frame, 16x16 generator, at steps 5 and 10 (different weights).

    Returns {"model_dir", "z" [2, 120], "labels" [2], "videos": {step: G_ema(z, labels) [2, 3, 16, 16, 3]}}.
    """
    import gin
    import numpy as np
    import tensorflow as tf
    from dvdgan_tf import config
    from dvdgan_tf.nets import generator
    from dvdgan_tf.nets import standing_stats

    config.parse_config(["gin/ucf101.gin"], TINY_G_BINDINGS)
    with open(os.path.join(model_dir, "operative_config.gin"), "w", encoding="utf-8") as f:
        f.write(gin.config_str() + "\n# a configurable of a module the exporter does not import:\n"
                                   "other_tool.setting = 1\n")
    g = generator.build_generator()
    z = tf.constant(np.random.default_rng(0).standard_normal((2, 120)), tf.float32)
    labels = tf.constant([0, 2], tf.int32)
    g(z, labels)
    step = tf.Variable(0, dtype=tf.int64)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(step=step, G_ema=g),
                                         os.path.join(model_dir, "checkpoints"), max_to_keep=3,
                                         checkpoint_name="ckpt")
    videos, rng = {}, np.random.default_rng(1)
    for s in (5, 10):
        if s == 10:
            for v in g.trainable_variables:
                v.assign(v + 0.5 * rng.standard_normal(v.shape).astype(np.float32))
        step.assign(s)
        standing_stats.recompute(g, seed=0, step=s)  # as dvdgan-train before a checkpoint (train.seed = 0)
        manager.save(checkpoint_number=s)
        videos[s] = g(z, labels, training=False).numpy()
    return {"model_dir": model_dir, "z": z.numpy(), "labels": labels.numpy(), "videos": videos}


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory):
    """See _make_tiny_run_dir (shared by the export and sampling tests)."""
    return _make_tiny_run_dir(str(tmp_path_factory.mktemp("tiny_run")))
