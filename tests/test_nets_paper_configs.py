"""Every shipped paper config: pinned parameter counts and full-size output shapes (built symbolically, no
activations), and a real forward pass at tiny width giving the right shapes and value ranges."""
import io
import os

import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf import config
from dvdgan_tf.nets import networks as models
from dvdgan_tf.cli.train import dry_run

GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gin")

# config: (classes, frames, resolution, {network: trainable parameters}) with the widths of gin/base.gin.
PAPER_CONFIGS = {
    "ucf101.gin": (101, 16, 128, {"G": 309_789_278, "D_S": 78_359_937, "D_T": 80_431_233}),
    "kinetics600_64px_12f.gin": (600, 12, 64, {"G": 212_766_790, "D_S": 20_040_065, "D_T": 22_111_361}),
    "kinetics600_64px_48f.gin": (600, 48, 64, {"G": 212_766_790, "D_S": 20_040_065, "D_T": 22_111_361}),
    "kinetics600_128px_12f.gin": (600, 12, 128, {"G": 309_849_158, "D_S": 79_381_889, "D_T": 81_453_185}),
    "kinetics600_128px_48f.gin": (600, 48, 128, {"G": 309_849_158, "D_S": 79_381_889, "D_T": 81_453_185}),
    "kinetics600_256px_12f.gin": (600, 12, 256, {"G": 311_570_374, "D_S": 159_079_809, "D_T": 161_151_105}),
}


def test_every_shipped_experiment_is_pinned():
    shipped = {f for f in os.listdir(GIN_DIR) if f.endswith(".gin")} - {"base.gin"}
    assert PAPER_CONFIGS.keys() <= shipped


def _hand_count_ds_64px():
    """D_S at 64 px, ch 128, 600 classes, counted by hand from the BigGAN block definition."""
    total, c_in = 0, 3
    for c_out in (128, 256, 512, 1024):
        total += 9 * c_in * c_out + c_out + 9 * c_out * c_out + c_out + c_in * c_out + c_out  # conv1, conv2, skip
        c_in = c_out
    return total + (1024 + 1) + 600 * 1024  # linear head + projection embedding


def test_pinned_count_matches_a_hand_count():
    assert PAPER_CONFIGS["kinetics600_64px_12f.gin"][3]["D_S"] == _hand_count_ds_64px()


@pytest.mark.parametrize("name", sorted(PAPER_CONFIGS))
def test_parameter_counts_and_shapes(name):
    classes, frames, resolution, pinned = PAPER_CONFIGS[name]
    out = io.StringIO()
    assert dry_run([os.path.join(GIN_DIR, name)], [], out=out) == pinned
    text = out.getvalue()
    assert f"G: {pinned['G']:,} parameters, output shape [1, {frames}, {resolution}, {resolution}, 3]" in text
    assert f"D_S: {pinned['D_S']:,} parameters, output shape [1]" in text
    assert f"D_T: {pinned['D_T']:,} parameters, output shape [1]" in text
    assert f"NUM_CLASSES = {classes}" in text


@pytest.mark.parametrize("name", sorted(PAPER_CONFIGS))
def test_tiny_width_forward(name):
    classes, frames, resolution, _ = PAPER_CONFIGS[name]
    config.parse_config([os.path.join(GIN_DIR, name)], ["G.ch = 4", "D_S.ch = 1", "D_T.ch = 1"])
    nets = models.build_networks()
    labels = tf.constant([0, classes - 1])
    video = nets.G(tf.random.normal([2, 120], seed=0), labels, training=True)
    assert video.shape == (2, frames, resolution, resolution, 3)
    assert np.all(np.abs(video.numpy()) <= 1.0)
    for d in (nets.D_S, nets.D_T):
        score = d(video, labels, training=True)
        assert score.shape == (2,) and np.isfinite(score.numpy()).all()
