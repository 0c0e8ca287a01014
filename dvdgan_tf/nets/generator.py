"""DVD-GAN's class-conditional video generator, in the published (v2) and seed (v1) layouts."""
import gin
import keras
import tensorflow as tf

from dvdgan_tf.nets.architecture import G_MULTIPLIERS, num_doublings, resolve_multipliers
from dvdgan_tf.nets.attention import SelfAttention, SeparableSelfAttention, make_attention
from dvdgan_tf.nets.blocks import GBlock
from dvdgan_tf.nets.convgru import ConvGRU
from dvdgan_tf.nets.input_checks import check_labels, check_settings
from dvdgan_tf.nets.layer_tracking import track
from dvdgan_tf.nets.normalization import ConditionalBatchNorm
from dvdgan_tf.nets.spectral_norm import SNConv, SNDense, SNEmbedding
from dvdgan_tf.nets import truncation as truncation_lib

LAYOUTS = ("v2", "v1")


class Generator(keras.Model):
    """Maps (z, label) to a video.

    call(z, labels, training=False, initial_states=None):
      z: [B, z_dim] float (N(0, I) or truncated). labels: [B] int in [0, num_classes).
      initial_states: optional list, one per ConvGRU, of [B, h, w, C] initial hidden states (DVD-GAN-FP);
        None entries mean zeros.
      Returns a float32 video [B, num_frames, resolution, resolution, 3] with values in [-1, 1].

    The condition [z; e(y)] (z_dim + embed_dim wide) drives every cBN. Layout 'v2': an affine map to
    [4, 4, ch*m0] repeated over T, then per resolution a group ConvGRU -> GBlock -> GBlock(x2 up).
    Layout 'v1': one ConvGRU at 4x4, full self-attention over T*4*4 positions, then a per-frame ResNet of
    x2 up GBlocks with separable self-attention before the last. 'v2' places the attention layer (kind
    ``attention``) after the first block of each group whose resolution is in ``attention_resolutions``.
    """

    def __init__(self, num_classes, num_frames, resolution, ch=128, channel_multipliers=None, layout="v2",
                 z_dim=120, embed_dim=120, attention="separable", attention_resolutions=(32,),
                 upsample_method="bilinear", kernel_initializer="orthogonal", name="G", **kwargs):
        super().__init__(name=name, **kwargs)
        if layout not in LAYOUTS:
            raise ValueError(f"G.layout must be one of {LAYOUTS}, got {layout!r}.")
        if num_frames < 1 or num_classes < 1:
            raise ValueError(f"G needs num_frames >= 1 and num_classes >= 1, got {num_frames}, {num_classes}.")
        n = num_doublings(resolution)
        self.mults = resolve_multipliers(channel_multipliers, G_MULTIPLIERS, resolution, n + 1, "G")
        self.num_classes, self.num_frames, self.resolution = num_classes, num_frames, resolution
        self.z_dim, self.layout, self.ch = z_dim, layout, ch
        init = kernel_initializer
        widths = [ch * m for m in self.mults]
        self.embed = SNEmbedding(num_classes, embed_dim, kernel_initializer=init, name="embed")
        self.linear = SNDense(4 * 4 * widths[0], kernel_initializer=init, name="linear")
        block = lambda c, up, nm: GBlock(c, upsample=up, upsample_method=upsample_method,
                                         kernel_initializer=init, name=nm)
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
        self.out_bn = ConditionalBatchNorm(kernel_initializer=init, name="out_cbn")
        self.out_conv = SNConv(3, 3, kernel_initializer=init, name="out_conv")

    def build(self, z_shape, labels_shape):
        """Sub-layers build on the first call; declaring this spares Keras a second trace of ``call``."""
        self.built = True

    def _run_stage(self, stage, x, cond, training):
        for kind, layer in stage:
            x = layer(x, cond, training=training) if kind == "block" else layer(x, training=training)
        return x

    def call(self, z, labels, training=False, initial_states=None):
        if z.shape[-1] is not None and z.shape[-1] != self.z_dim:
            raise ValueError(f"G expects z shaped [batch, {self.z_dim}], got {list(z.shape)}.")
        labels = check_labels(labels, self.num_classes, "G")
        z = tf.cast(z, self.compute_dtype)
        cond = tf.concat([z, self.embed(labels, training=training)], axis=-1)
        x = self.linear(cond, training=training)
        x = tf.reshape(x, [-1, 1, 4, 4, x.shape[-1] // 16])
        x = tf.tile(x, [1, self.num_frames, 1, 1, 1])
        states = list(initial_states) if initial_states is not None else [None] * len(self.grus)
        for i, stage in enumerate(self.stages):
            if i < len(self.grus):
                x = self.grus[i](x, initial_state=states[i], training=training)
            x = self._run_stage(stage, x, cond, training)
        x = tf.nn.relu(self.out_bn(x, cond, training=training))
        return tf.cast(tf.tanh(self.out_conv(x, training=training)), tf.float32)


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
                    attention_resolutions=(32,), upsample_method="bilinear", kernel_initializer="orthogonal"):
    """The gin-configurable generator factory (gin name ``G``). See ``Generator`` for the arguments."""
    check_settings("G", num_classes=num_classes, num_frames=num_frames, resolution=resolution, ch=ch,
                   channel_multipliers=channel_multipliers, z_dim=z_dim, embed_dim=embed_dim,
                   attention_resolutions=attention_resolutions)
    return Generator(num_classes, num_frames, resolution, ch=ch, channel_multipliers=channel_multipliers,
                     layout=layout, z_dim=z_dim, embed_dim=embed_dim, attention=attention,
                     attention_resolutions=tuple(attention_resolutions), upsample_method=upsample_method,
                     kernel_initializer=kernel_initializer)
