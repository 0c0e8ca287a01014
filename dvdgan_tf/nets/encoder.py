"""DVD-GAN-FP's conditioning encoder: the context frames -> the initial states of G's ConvGRUs.

The paper: each of the C context frames goes separately through a ResNet identical in form to D_S's; the
per-frame features are concatenated on channels, a 1x1 convolution reduces them to 512 channels, and the result,
at the spatial size of G's recurrent state, is the ConvGRU's initial state.

Here (``ContextEncoder``):
- the ResNet is D_S's block stack built from the same pieces (``blocks.DBlock``, ``architecture.D_TABLES`` via
  ``resolve_d_blocks``; gin ``Encoder.table``, ``Encoder.ch``, ``Encoder.channel_multipliers``, defaults as
  D_S's), without D_S's attention, final ReLU-sum and projection head. Frames go through it independently
  (2-D blocks on [B, C, H, W, ch]: time folded into the batch). It has no batch normalisation.
- [open] v2 has one ConvGRU per resolution 4, 8, ..., resolution / 2. Each gets the encoder's feature of its own
  resolution: the output of the last encoder block at that resolution (the ResNet halves the resolution in
  every block from full size down to 4x4, so each of G's ConvGRU resolutions occurs once; at 4x4 it is the output
  of BigGAN's final, non-downsampling block when the table has one). v1's single ConvGRU at 4x4 gets the 4x4
  feature.
- per ConvGRU: the C per-frame features [B, h, w, c] are concatenated on channels ([B, h, w, C * c]), a 1x1
  spectrally normalised convolution reduces them to ``Encoder.channels`` (512, the paper's number), then ReLU and
  a second 1x1 convolution map them to that ConvGRU's width (G's widths are ch * multiplier, generally not 512).
  The result, without a further activation, is the ConvGRU's initial hidden state.
- the encoder is a sub-layer of G (``G.encoder``): its weights are G's (trained with G's optimizer, in G's
  checkpoints, averaged into the EMA; its spectral-norm vectors get the standing-statistics power iteration).
"""
import gin
import keras
import tensorflow as tf

from dvdgan_tf.nets.architecture import resolve_d_blocks
from dvdgan_tf.nets.blocks import DBlock
from dvdgan_tf.errors import setting_error
from dvdgan_tf.nets.input_checks import check_settings, is_integer
from dvdgan_tf.nets.layer_tracking import track
from dvdgan_tf.nets.spectral_norm import SNConv


def check_context(context, context_frames, resolution, name="G"):
    """Raises ValueError unless ``context`` is [B, context_frames, resolution, resolution, 3] (static dims)."""
    shape = tuple(context.shape)
    expected = (context_frames, resolution, resolution, 3)
    if len(shape) != 5 or any(s is not None and s != e for s, e in zip(shape[1:], expected)):
        raise ValueError(
            f"{name} expects a context shaped [batch, {context_frames}, {resolution}, {resolution}, 3] (the first "
            f"{context_frames} frames of a clip, RGB in [-1, 1]) but got shape {list(shape)}. Pass the clip's "
            f"first {context_frames} frames at the config's resolution (G.context_frames, RESOLUTION).")


class ContextEncoder(keras.layers.Layer):
    """call(context) -> list of initial ConvGRU states, one per entry of ``state_resolutions``.

    Args:
      context_frames: C. resolution: the frames' height and width.
      state_resolutions, state_widths: per ConvGRU of G (in G's order), its spatial size and channels.
      ch, channel_multipliers, table: the per-frame ResNet, as D_S's (``architecture.resolve_d_blocks``).
      channels: the width the concatenated per-frame features are reduced to (paper: 512).
    context: [B, C, resolution, resolution, 3] float in [-1, 1]. Returns [[B, r, r, width] per ConvGRU].
    """

    def __init__(self, context_frames, resolution, state_resolutions, state_widths, ch=128,
                 channel_multipliers=None, table="biggan", channels=512, kernel_initializer="orthogonal",
                 name="encoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.context_frames, self.resolution, self.channels = context_frames, resolution, channels
        self.state_resolutions = tuple(state_resolutions)
        blocks = resolve_d_blocks(channel_multipliers, table, resolution, "Encoder")
        self.blocks, self.block_resolutions = [], []
        res = resolution
        for i, (m, downsample) in enumerate(blocks):
            self.blocks.append(track(self, DBlock(ch * m, rank=2, downsample=downsample, preactivation=i > 0,
                                                  kernel_initializer=kernel_initializer, name=f"block_{i}")))
            res = res // 2 if downsample else res
            self.block_resolutions.append(res)
        # The feature of resolution r: the output of the last block at r.
        self.taps = []
        for r in self.state_resolutions:
            if r not in self.block_resolutions:
                raise ValueError(f"the encoder's ResNet has no feature at {r}x{r} (its blocks give "
                                 f"{self.block_resolutions}): check Encoder.channel_multipliers.")
            self.taps.append(max(i for i, br in enumerate(self.block_resolutions) if br == r))
        self.reduce, self.project = [], []
        for r, width in zip(self.state_resolutions, state_widths):
            self.reduce.append(track(self, SNConv(channels, 1, kernel_initializer=kernel_initializer,
                                                  name=f"reduce_{r}")))
            self.project.append(track(self, SNConv(width, 1, kernel_initializer=kernel_initializer,
                                                   name=f"state_{r}")))

    def build(self, context_shape):
        """Sub-layers build on the first call."""
        self.built = True

    def features(self, context, training=False):
        """Per-frame ResNet features: [B, C, H, W, 3] -> list over blocks of [B, C, r, r, c]."""
        x, outputs = context, []
        for block in self.blocks:
            x = block(x, training=training)
            outputs.append(x)
        return outputs

    def call(self, context, training=False):
        check_context(context, self.context_frames, self.resolution, "the context encoder")
        outputs = self.features(tf.cast(context, self.compute_dtype), training=training)
        states = []
        for tap, reduce, project in zip(self.taps, self.reduce, self.project):
            f = outputs[tap]  # [B, C, r, r, c]
            r, c = f.shape[2], f.shape[4]
            f = tf.reshape(tf.transpose(f, [0, 2, 3, 1, 4]), [-1, r, r, self.context_frames * c])
            states.append(project(tf.nn.relu(reduce(f, training=training)), training=training))
        return states


@gin.configurable("Encoder", denylist=["context_frames", "resolution", "state_resolutions", "state_widths",
                                       "kernel_initializer"])
def build_encoder(context_frames, resolution, state_resolutions, state_widths, ch=128, channel_multipliers=None,
                  table="biggan", channels=512, kernel_initializer="orthogonal"):
    """The gin-configurable encoder factory (gin name ``Encoder``); G builds it when G.context_frames > 0."""
    check_settings("Encoder", ch=ch, channel_multipliers=channel_multipliers)
    if not is_integer(channels) or channels < 1:
        raise setting_error("Encoder.channels", channels, "an integer >= 1")
    return ContextEncoder(context_frames, resolution, state_resolutions, state_widths, ch=ch,
                          channel_multipliers=channel_multipliers, table=table, channels=channels,
                          kernel_initializer=kernel_initializer)
