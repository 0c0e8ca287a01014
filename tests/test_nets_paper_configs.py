"""Every shipped config: each network's parameter count equals a closed formula written here layer by layer
(not read from the code under test), with full-size output shapes (built symbolically, no activations); and a
real forward pass at tiny width giving the right shapes and value ranges.

The formula's tables are literals: G's per-resolution channel multipliers (this project's choice, README
"Differences from the paper") and BigGAN's discriminator tables (BigGAN-PyTorch ``D_arch``: output width of each
block as a multiple of ch, and whether it downsamples). Each row of CONFIGS restates what its gin file sets.
"""
import io
import os

import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf import config
from dvdgan_tf.nets import networks as models
from dvdgan_tf.cli.train import dry_run

GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gin")

# G: multipliers of ch at 4x4 and after each doubling of the resolution.
G_TABLE = {64: (8, 8, 4, 2, 1), 128: (8, 8, 8, 4, 2, 1), 256: (8, 8, 8, 4, 2, 1, 1)}
# BigGAN's D (BigGAN-PyTorch D_arch): (output multiplier of ch, downsamples?) per residual block.
BIGGAN_D = {
    64: ((1, True), (2, True), (4, True), (8, True), (16, False)),
    128: ((1, True), (2, True), (4, True), (8, True), (16, True), (16, False)),
    256: ((1, True), (2, True), (4, True), (8, True), (8, True), (16, True), (16, False)),
}
# The demo's D: three downsampling blocks 1, 2, 4 at 32 px and no final block.
DEMO_D = ((1, True), (2, True), (4, True))


def _paper(classes, frames, resolution):
    """A paper config: the widths of gin/base.gin (ch 128, G attention at 32x32, BigGAN's D tables)."""
    return dict(classes=classes, frames=frames, resolution=resolution,
                G=dict(ch=128, mults=G_TABLE[resolution], attention=(32,)),
                D=dict(ch=128, blocks=BIGGAN_D[resolution]))


CONFIGS = {
    "demo.gin": dict(classes=4, frames=8, resolution=32, G=dict(ch=16, mults=(8, 4, 2, 1), attention=(16,)),
                     D=dict(ch=16, blocks=DEMO_D)),
    "demo16.gin": dict(classes=4, frames=16, resolution=32, G=dict(ch=16, mults=(8, 4, 2, 1), attention=(16,)),
                       D=dict(ch=16, blocks=DEMO_D)),
    "ucf101.gin": _paper(101, 16, 128),
    "kinetics600_64px_12f.gin": _paper(600, 12, 64),
    "kinetics600_64px_48f.gin": _paper(600, 48, 64),
    "kinetics600_128px_12f.gin": _paper(600, 12, 128),
    "kinetics600_128px_48f.gin": _paper(600, 48, 128),
    "kinetics600_256px_12f.gin": _paper(600, 12, 256),
    # DVD-GAN-FP: C context frames and the encoder (a D-form ResNet per frame, 1x1 reductions to `channels`).
    "demo_fp.gin": dict(classes=1, frames=8, resolution=32, G=dict(ch=16, mults=(8, 4, 2, 1), attention=(16,)),
                        D=dict(ch=16, blocks=DEMO_D), context=2, encoder=dict(ch=16, blocks=DEMO_D, channels=64)),
    "bair_fp.gin": dict(_paper(1, 16, 64), context=1, encoder=dict(ch=128, blocks=BIGGAN_D[64], channels=512)),
    "kinetics600_fp.gin": dict(_paper(600, 16, 64), context=5,
                               encoder=dict(ch=128, blocks=BIGGAN_D[64], channels=512)),
}
PAPER_CONFIGS = sorted(set(CONFIGS) - {"demo.gin", "demo16.gin", "demo_fp.gin"})


class _Count:
    """Accumulates trainable parameters and the entries of spectral-norm u vectors (not trainable)."""

    def __init__(self):
        self.params, self.sn_u = 0, 0

    def sn(self, fan_in, fan_out, bias):
        """A spectrally normalised weight [fan_in, fan_out] (+ bias [fan_out]); u is [1, fan_out]."""
        self.params += fan_in * fan_out + (fan_out if bias else 0)
        self.sn_u += fan_out

    def conv(self, k, rank, c_in, c_out):
        """k^rank x c_in -> c_out convolution with bias."""
        self.sn(k ** rank * c_in, c_out, bias=True)

    def attention(self, c):
        """SAGAN self-attention: theta, phi (C/8), g (C/2), o (back to C), no biases; gain gamma."""
        self.sn(c, c // 8, False)
        self.sn(c, c // 8, False)
        self.sn(c, c // 2, False)
        self.sn(c // 2, c, False)
        self.params += 1


def generator_count(classes, resolution, ch, mults, attention, z_dim=120, embed_dim=120):
    """G, layout v2 with separable attention: embedding; linear to [4, 4, w0]; per resolution a ConvGRU, a
    block, (attention), an up-block; output cBN and 3x3 conv to RGB. Every cBN: gain and bias maps of the
    condition [z; e(y)] without bias terms (its BN has no trainable scale or offset)."""
    c, cond = _Count(), z_dim + embed_dim
    w = [ch * m for m in mults]
    n = len(w) - 1
    assert 4 * 2 ** n == resolution

    def cbn(channels):
        c.sn(cond, channels, False)  # gain
        c.sn(cond, channels, False)  # bias

    def gblock(c_in, c_out):
        cbn(c_in)
        c.conv(3, 2, c_in, c_out)
        cbn(c_out)
        c.conv(3, 2, c_out, c_out)
        if c_in != c_out:
            c.conv(1, 2, c_in, c_out)  # skip

    c.sn(classes, embed_dim, False)  # class embedding
    c.sn(cond, 16 * w[0], True)  # affine map to [4, 4, w0]
    for i in range(n):
        c.conv(3, 2, 2 * w[i], 2 * w[i])  # ConvGRU gates on [x; h] (input width w_i, hidden w_i)
        c.conv(3, 2, 2 * w[i], w[i])  # ConvGRU candidate
        gblock(w[i], w[i])
        if 4 * 2 ** i in attention:
            for _ in range(3):  # separable: height, width, time
                c.attention(w[i])
        gblock(w[i], w[i + 1])
    cbn(w[n])
    c.conv(3, 2, w[n], 3)
    return c


def discriminator_count(classes, ch, blocks, num_3d_blocks=0):
    """BigGAN ResNet projection D: per block conv1 3x3 (c_in -> c_out), conv2 3x3 (c_out -> c_out), and a 1x1 skip
    conv when the width changes or the block downsamples; the first num_3d_blocks blocks have 3x3x3 convs (their
    1x1 skip has the same size either way). Head: linear to 1 with bias, projection embedding [classes, C]."""
    c, c_in = _Count(), 3
    for i, (m, downsample) in enumerate(blocks):
        c_out, rank = ch * m, 3 if i < num_3d_blocks else 2
        c.conv(3, rank, c_in, c_out)
        c.conv(3, rank, c_out, c_out)
        if c_in != c_out or downsample:
            c.conv(1, 2, c_in, c_out)
        c_in = c_out
    c.sn(c_in, 1, True)
    c.sn(classes, c_in, False)
    return c


def encoder_count(context, resolution, ch, blocks, channels, gru_widths):
    """DVD-GAN-FP's encoder: the blocks of a ResNet discriminator (no head) applied per context frame; for the
    ConvGRU at 4 * 2^i px (width gru_widths[i]), a 1x1 conv from the C frames' concatenated features of the last
    block at that resolution to `channels`, then a 1x1 conv to the ConvGRU's width."""
    c, c_in, res, width_at = _Count(), 3, resolution, {}
    for m, downsample in blocks:
        c_out = ch * m
        c.conv(3, 2, c_in, c_out)
        c.conv(3, 2, c_out, c_out)
        if c_in != c_out or downsample:
            c.conv(1, 2, c_in, c_out)
        res = res // 2 if downsample else res
        width_at[res], c_in = c_out, c_out
    for i, w in enumerate(gru_widths):
        c.conv(1, 2, context * width_at[4 * 2 ** i], channels)
        c.conv(1, 2, channels, w)
    return c


def expected_counts(name):
    row = CONFIGS[name]
    g, d = row["G"], row["D"]
    counts = {"G": generator_count(row["classes"], row["resolution"], g["ch"], g["mults"], g["attention"]),
              "D_S": discriminator_count(row["classes"], d["ch"], d["blocks"]),
              "D_T": discriminator_count(row["classes"], d["ch"], d["blocks"], num_3d_blocks=2)}
    if "encoder" in row:  # G's count includes its encoder's; dry runs also print the encoder's part
        e = row["encoder"]
        counts["G.encoder"] = encoder_count(row["context"], row["resolution"], e["ch"], e["blocks"], e["channels"],
                                            [g["ch"] * m for m in g["mults"][:-1]])
        counts["G"].params += counts["G.encoder"].params
        counts["G"].sn_u += counts["G.encoder"].sn_u
    return counts


def test_every_shipped_experiment_is_counted():
    shipped = {f for f in os.listdir(GIN_DIR) if f.endswith(".gin")} - {"base.gin"}
    assert shipped == set(CONFIGS)


def test_formula_matches_a_hand_count():
    """The formula against sums written out by hand (BigGAN's D at 64 px, ch 128, 600 classes; the demo's D_S)."""
    d = 0
    for c_in, c_out in ((3, 128), (128, 256), (256, 512), (512, 1024), (1024, 2048)):
        d += 9 * c_in * c_out + c_out + 9 * c_out * c_out + c_out + c_in * c_out + c_out  # conv1, conv2, skip
    d += 2048 + 1 + 600 * 2048  # linear head, projection embedding
    assert discriminator_count(600, 128, BIGGAN_D[64]).params == d == 79_381_889
    demo_ds = 0
    for c_in, c_out in ((3, 16), (16, 32), (32, 64)):
        demo_ds += 9 * c_in * c_out + c_out + 9 * c_out * c_out + c_out + c_in * c_out + c_out
    assert discriminator_count(4, 16, DEMO_D).params == demo_ds + 64 + 1 + 4 * 64 == 75_121


def _sn_u_entries(net):
    return sum(int(np.prod(v.shape)) for v in net.non_trainable_variables if v.name == "sn_u")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_parameter_counts_equal_the_formula(name, monkeypatch):
    """dvdgan-train --dry_run's counts (and the u vectors' sizes) equal the formula, for every shipped config."""
    row, expected = CONFIGS[name], expected_counts(name)
    built = []
    build = models.build_networks
    monkeypatch.setattr(models, "build_networks", lambda **kw: built.append(build(**kw)) or built[-1])
    out = io.StringIO()
    counts = dry_run([os.path.join(GIN_DIR, name)], [], out=out)
    assert counts == {net: c.params for net, c in expected.items()}
    text, res, frames = out.getvalue(), row["resolution"], row["frames"]
    assert f"G: {expected['G'].params:,} parameters, output shape [1, {frames}, {res}, {res}, 3]" in text
    assert f"D_S: {expected['D_S'].params:,} parameters, output shape [1]" in text
    assert f"D_T: {expected['D_T'].params:,} parameters, output shape [1]" in text
    assert f"NUM_CLASSES = {row['classes']}" in text
    if "encoder" in row:
        assert f"  of which the context encoder (G.encoder): {expected['G.encoder'].params:,}" in text
    # u vectors are variables but not parameters: Keras lists them as non-trainable; one per SN weight.
    assert {net: _sn_u_entries(m) for net, m in built[0]._asdict().items()} == {
        net: expected[net].sn_u for net in ("G", "D_S", "D_T")}


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_tiny_width_forward(name):
    row = CONFIGS[name]
    classes, frames, resolution = row["classes"], row["frames"], row["resolution"]
    config.parse_config([os.path.join(GIN_DIR, name)], ["G.ch = 4", "D_S.ch = 1", "D_T.ch = 1", "Encoder.ch = 1",
                                                       "Encoder.channels = 4"])
    nets = models.build_networks()
    labels = tf.constant([0, classes - 1])
    context = tf.random.uniform([2, row.get("context", 0), resolution, resolution, 3], -1, 1, seed=0)
    video = nets.G(tf.random.normal([2, 120], seed=0), labels, training=True,
                   context=context if "context" in row else None)
    assert video.shape == (2, frames, resolution, resolution, 3)
    if "context" in row:  # the context frames, copied in
        np.testing.assert_array_equal(video.numpy()[:, :row["context"]], context.numpy())
    assert np.all(np.abs(video.numpy()) <= 1.0)
    for d in (nets.D_S, nets.D_T):
        score = d(video, labels, training=True)
        assert score.shape == (2,) and np.isfinite(score.numpy()).all()
