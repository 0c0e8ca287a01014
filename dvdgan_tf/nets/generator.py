"""DVD-GAN's class-conditional video generator, in the published (v2) and seed (v1) layouts."""
import gin
import keras
import tensorflow as tf

from dvdgan_tf.nets.architecture import G_MULTIPLIERS, num_doublings, resolve_multipliers
from dvdgan_tf.nets.attention import SelfAttention, SeparableSelfAttention, make_attention
from dvdgan_tf.nets.blocks import GBlock
from dvdgan_tf.nets.convgru import ConvGRU
from dvdgan_tf.nets.encoder import build_encoder, check_context
from dvdgan_tf.errors import setting_error
from dvdgan_tf.nets.input_checks import check_labels, check_settings, is_integer
from dvdgan_tf.nets.layer_tracking import track
from dvdgan_tf.nets.normalization import ConditionalBatchNorm
from dvdgan_tf.nets.spectral_norm import SNConv, SNDense, SNEmbedding
from dvdgan_tf.nets import truncation as truncation_lib

LAYOUTS = ("v2", "v1")


class Generator(keras.Model):
    """Maps (z, label) to a video.

    call(z, labels, training=False, initial_states=None, context=None):
      z: [B, z_dim] float (N(0, I) or truncated). labels: [B] int in [0, num_classes).
      initial_states: optional list, one per ConvGRU, of [B, h, w, C] initial hidden states; None entries mean
        zeros. With context_frames > 0 they default to the context encoder's states.
    encoder: with context_frames > 0, keyword arguments of ``encoder.build_encoder`` (ch, channel_multipliers,
      table, channels) overriding gin's ``Encoder.*``.
      context: with context_frames = C > 0 (DVD-GAN-FP, frame-conditional prediction), required: the clip's
        first C frames [B, C, resolution, resolution, 3] float in [-1, 1]; must be None when C = 0.
      Returns a float32 video [B, num_frames, resolution, resolution, 3] with values in [-1, 1]. With C > 0 its
        first C frames are the context copied in (float32, unchanged) and G renders only the num_frames - C
        frames after them: the ConvGRUs run over num_frames - C steps from the encoder's initial states
        (``nets/encoder.py``), and G's BN statistics ([T, C]) cover those rendered frames.

    The condition [z; e(y)] (z_dim + embed_dim wide) drives every cBN. Layout 'v2': an affine map to
    [4, 4, ch*m0] repeated over T, then per resolution a group ConvGRU -> GBlock -> GBlock(x2 up).
    Layout 'v1': one ConvGRU at 4x4, full self-attention over T*4*4 positions, then a per-frame ResNet of
    x2 up GBlocks with separable self-attention before the last. 'v2' places the attention layer (kind
    ``attention``) after the first block of each group whose resolution is in ``attention_resolutions``.
    """

    def __init__(self, num_classes, num_frames, resolution, ch=128, channel_multipliers=None, layout="v2",
                 z_dim=120, embed_dim=120, attention="separable", attention_resolutions=(32,),
                 upsample_method="bilinear", kernel_initializer="orthogonal", context_frames=0, encoder=None,
                 remat=False, name="G", **kwargs):
        super().__init__(name=name, **kwargs)
        if layout not in LAYOUTS:
            raise ValueError(f"G.layout must be one of {LAYOUTS}, got {layout!r}.")
        if num_frames < 1 or num_classes < 1:
            raise ValueError(f"G needs num_frames >= 1 and num_classes >= 1, got {num_frames}, {num_classes}.")
        if not 0 <= context_frames < num_frames:
            raise ValueError(f"G.context_frames must be in [0, num_frames) = [0, {num_frames}), got "
                             f"{context_frames}.")
        n = num_doublings(resolution)
        self.mults = resolve_multipliers(channel_multipliers, G_MULTIPLIERS, resolution, n + 1, "G")
        self.num_classes, self.num_frames, self.resolution = num_classes, num_frames, resolution
        self.z_dim, self.layout, self.ch = z_dim, layout, ch
        self.context_frames = context_frames
        self.rendered_frames = num_frames - context_frames  # frames G draws (after the copied-in context)
        init = kernel_initializer
        widths = [ch * m for m in self.mults]
        self.embed = SNEmbedding(num_classes, embed_dim, kernel_initializer=init, name="embed")
        self.linear = SNDense(4 * 4 * widths[0], kernel_initializer=init, name="linear")
        block = lambda c, up, nm: GBlock(c, upsample=up, upsample_method=upsample_method,
                                         kernel_initializer=init, remat=remat, name=nm)
        self.grus, self.stages = [], []  # stages: list of lists of ("block"|"attn", layer)
        if layout == "v2":
            for i in range(n):
                res = 4 * 2 ** i
                self.grus.append(ConvGRU(widths[i], kernel_initializer=init, name=f"convgru_{res}"))
                stage = [("block", block(widths[i], False, f"block_{res}a"))]
                if res in attention_resolutions:
                    stage.append(("attn", make_attention(attention, init, name=f"attention_{res}")))
                stage.append(("block", block(widths[i + 1], True, f"block_{res}b")))
                self.stages.append(stage)
        else:
            self.grus.append(ConvGRU(widths[0], kernel_initializer=init, name="convgru_4"))
            self.stages.append([("attn", SelfAttention(kernel_initializer=init, name="attention_4"))])
            for i in range(n):
                res = 4 * 2 ** i
                stage = [("attn", SeparableSelfAttention(init, name=f"attention_{res}"))] if i == n - 1 else []
                self.stages.append(stage + [("block", block(widths[i + 1], True, f"block_{res}"))])
        for layer in self.grus + [layer for stage in self.stages for _, layer in stage]:
            track(self, layer)
        self.encoder = None
        if context_frames:
            self.encoder = build_encoder(context_frames, resolution, [4 * 2 ** i for i in range(len(self.grus))],
                                         [g.channels for g in self.grus], kernel_initializer=init,
                                         **(encoder or {}))
        self.out_bn = ConditionalBatchNorm(kernel_initializer=init, name="out_cbn")
        self.out_conv = SNConv(3, 3, kernel_initializer=init, name="out_conv")

    def build(self, z_shape, labels_shape, *args, **kwargs):
        """Sub-layers build on the first call; declaring this spares Keras a second trace of ``call``."""
        self.built = True

    def _run_stage(self, stage, x, cond, training):
        for kind, layer in stage:
            x = layer(x, cond, training=training) if kind == "block" else layer(x, training=training)
        return x

    def call(self, z, labels, training=False, initial_states=None, context=None):
        if z.shape[-1] is not None and z.shape[-1] != self.z_dim:
            raise ValueError(f"G expects z shaped [batch, {self.z_dim}], got {list(z.shape)}.")
        labels = check_labels(labels, self.num_classes, "G")
        if self.context_frames:
            if context is None:
                raise ValueError(f"G predicts from {self.context_frames} context frames (G.context_frames): "
                                 f"call it with context=[batch, {self.context_frames}, {self.resolution}, "
                                 f"{self.resolution}, 3].")
            check_context(context, self.context_frames, self.resolution)
            context = tf.cast(context, tf.float32)
            if initial_states is None:
                initial_states = self.encoder(context, training=training)
        elif context is not None:
            raise ValueError("G got a context but G.context_frames is 0 (a synthesis model): set "
                             "G.context_frames in the config for frame-conditional prediction.")
        z = tf.cast(z, self.compute_dtype)
        cond = tf.concat([z, self.embed(labels, training=training)], axis=-1)
        x = self.linear(cond, training=training)
        x = tf.reshape(x, [-1, 1, 4, 4, x.shape[-1] // 16])
        x = tf.tile(x, [1, self.rendered_frames, 1, 1, 1])
        states = list(initial_states) if initial_states is not None else [None] * len(self.grus)
        for i, stage in enumerate(self.stages):
            if i < len(self.grus):
                x = self.grus[i](x, initial_state=states[i], training=training)
            x = self._run_stage(stage, x, cond, training)
        x = tf.nn.relu(self.out_bn(x, cond, training=training))
        video = tf.cast(tf.tanh(self.out_conv(x, training=training)), tf.float32)
        if self.context_frames:
            video = tf.concat([context, video], axis=1)
        return video


def sample_latents(batch_size, z_dim=120, truncation=None, seed=None, convention=truncation_lib.RESAMPLE):
    """Draws z [batch_size, z_dim] float32 from N(0, I), or truncated by ``truncation_lib.latents`` (convention
    'resample': N(0, I) truncated to [-t, t]; 'scaled': t * truncnorm(-2, 2)). truncation None or 0: none.

    seed: None (stateful random op) or a [2] int tensor for a stateless, reproducible draw.
    """
    seed = tf.random.uniform([2], maxval=2 ** 31 - 1, dtype=tf.int32) if seed is None else seed
    return truncation_lib.latents([batch_size, z_dim], seed, convention, truncation)


@gin.configurable("G", denylist=["kernel_initializer"])
def build_generator(num_classes=gin.REQUIRED, num_frames=gin.REQUIRED, resolution=gin.REQUIRED, ch=128,
                    channel_multipliers=None, layout="v2", z_dim=120, embed_dim=120, attention="separable",
                    attention_resolutions=(32,), upsample_method="bilinear", kernel_initializer="orthogonal",
                    context_frames=0, remat=False):
    """The gin-configurable generator factory (gin name ``G``). See ``Generator`` for the arguments.

    context_frames: 0 (video synthesis) or C > 0 for DVD-GAN-FP (the first C of the num_frames frames are given,
    G renders the rest; the encoder's settings are gin ``Encoder.*``, ``nets/encoder.py``).
    remat: gradient checkpointing of every GBlock in training (``blocks.checkpointed``): their activations are
    recomputed in the backward pass instead of kept; same gradients, less memory, about 1/3 more G compute."""
    check_settings("G", num_classes=num_classes, num_frames=num_frames, resolution=resolution, ch=ch,
                   channel_multipliers=channel_multipliers, z_dim=z_dim, embed_dim=embed_dim,
                   attention_resolutions=attention_resolutions)
    if not is_integer(context_frames) or not 0 <= context_frames < num_frames:
        raise setting_error("G.context_frames", context_frames, f"an integer in [0, NUM_FRAMES) = [0, {num_frames})")
    return Generator(num_classes, num_frames, resolution, ch=ch, channel_multipliers=channel_multipliers,
                     layout=layout, z_dim=z_dim, embed_dim=embed_dim, attention=attention,
                     attention_resolutions=tuple(attention_resolutions), upsample_method=upsample_method,
                     kernel_initializer=kernel_initializer, context_frames=context_frames, remat=remat)
