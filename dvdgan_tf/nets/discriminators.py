"""DVD-GAN's dual discriminator: spatial D_S on k sampled frames, temporal D_T on the downsampled clip.

Both are BigGAN ResNet projection discriminators (Miyato & Koyama 2018): score = w . h + e(y) . h with h the
ReLU'd, spatially summed final features. Inputs are videos [B, T, H, W, 3] in [-1, 1] and labels [B] int.
Their blocks follow BigGAN's D tables by default (``architecture.D_TABLES``): one 2x2-downsampling block per
halving of the resolution, then a final block that does not downsample.
"""
import gin
import keras
import tensorflow as tf

from dvdgan_tf.nets.attention import HEIGHT, WIDTH, SelfAttention, make_attention
from dvdgan_tf.nets.architecture import resolve_d_blocks
from dvdgan_tf.nets.blocks import DBlock, avgpool
from dvdgan_tf.nets.input_checks import check_labels, check_settings, check_video
from dvdgan_tf.nets.layer_tracking import track
from dvdgan_tf.nets.spectral_norm import SNDense, SNEmbedding


def check_frame_count(k, num_frames):
    """Raises ValueError unless 1 <= k <= num_frames (k frames drawn without replacement)."""
    if not 1 <= k <= num_frames:
        raise ValueError(f"D_S.k={k} frames cannot be drawn without replacement from {num_frames} frames: "
                         f"set D_S.k between 1 and NUM_FRAMES ({num_frames}).")


def sample_frame_indices(batch_size, num_frames, k, seed):
    """Draws k distinct frame indices per video, uniformly, in increasing order.

    Args:
      batch_size: B (int or scalar tensor). num_frames: T. k: frames per video, 1 <= k <= T.
      seed: [2] int tensor; the same seed gives the same indices (stateless).
    Returns:
      [B, k] int32 indices into the time axis.
    """
    check_frame_count(k, num_frames)
    noise = tf.random.stateless_uniform([batch_size, num_frames], seed)
    _, indices = tf.math.top_k(noise, k=k)
    return tf.sort(indices, axis=-1)


class _ProjectionDiscriminator(keras.Model):
    """Shared parts: a stack of DBlocks, optional attention, and the projection head.

    The blocks come from ``resolve_d_blocks(channel_multipliers, table, ...)``; an attention layer follows the
    downsampling block whose output resolution is in ``attention_resolutions``.
    """

    def __init__(self, num_classes, num_frames, resolution, ch, channel_multipliers, attention_resolutions,
                 input_resolution, block_ranks, kernel_initializer, attention_factory, pool_time=False,
                 table="biggan", remat=False, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.num_frames, self.resolution = num_classes, num_frames, resolution
        blocks = resolve_d_blocks(channel_multipliers, table, resolution, self.name)
        self.layers_ = []
        res = input_resolution
        for i, (m, downsample) in enumerate(blocks):
            rank = block_ranks[i] if i < len(block_ranks) else 2
            downsample = downsample and res > 1
            self.layers_.append(track(self, DBlock(
                ch * m, rank=rank, downsample=downsample, preactivation=i > 0,
                pool_time=pool_time and rank == 3, kernel_initializer=kernel_initializer, remat=remat,
                name=f"block_{i}")))
            if downsample:
                res //= 2
                if res in attention_resolutions:
                    self.layers_.append(track(self, attention_factory(f"attention_{res}")))
        self.linear = SNDense(1, kernel_initializer=kernel_initializer, name="linear")
        self.embed = SNEmbedding(num_classes, ch * blocks[-1][0], kernel_initializer=kernel_initializer,
                                 name="embed")

    def build(self, video_shape, labels_shape):
        """Sub-layers build on the first call; declaring this spares Keras a second trace of ``call``."""
        self.built = True

    def features(self, x, training=False):
        """[B, T, H, W, 3] -> [B, T', C]: the blocks, ReLU, then a sum over height and width."""
        for layer in self.layers_:
            x = layer(x, training=training)
        return tf.reduce_sum(tf.nn.relu(x), axis=[2, 3])

    def project(self, h, labels, training=False):
        """Projection head: h [B, T', C], labels [B] -> per-frame scores [B, T'] float32."""
        h = tf.cast(h, tf.float32)
        linear = tf.squeeze(tf.cast(self.linear(h, training=training), tf.float32), -1)
        embedding = tf.cast(self.embed(labels, training=training), tf.float32)
        return linear + tf.reduce_sum(embedding[:, None, :] * h, axis=-1)


class SpatialDiscriminator(_ProjectionDiscriminator):
    """D_S: scores k frames drawn per video without replacement with a per-frame 2-D ResNet; sums the scores.

    call(video, labels, training=False, frame_seed=None, frame_indices=None) -> [B] float32.
      video [B, num_frames, resolution, resolution, 3]; frame_seed: [2] int tensor for reproducible frame
      sampling, or None to draw from the layer's own seed generator (seeded by ``seed``); frame_indices: [B, k]
      int32 frames already drawn (``sample_frame_indices``; the trainer draws them for the global batch and
      passes each replica its rows), used instead of a draw.
    """

    def __init__(self, num_classes, num_frames, resolution, ch=128, channel_multipliers=None, k=8,
                 attention_resolutions=(), seed=0, table="biggan", kernel_initializer="orthogonal", remat=False,
                 name="D_S", **kwargs):
        check_frame_count(k, num_frames)
        attn = lambda nm: SelfAttention((HEIGHT, WIDTH), kernel_initializer=kernel_initializer, name=nm)
        super().__init__(num_classes, num_frames, resolution, ch, channel_multipliers, attention_resolutions,
                         resolution, (), kernel_initializer, attn, table=table, remat=remat, name=name, **kwargs)
        self.k = k
        self.seed_generator = keras.random.SeedGenerator(seed, name="frame_seed")
        self.frame_seed_state = self.seed_generator.state  # so tf.train.Checkpoint saves the generator's state

    def sample_frames(self, video, frame_seed=None, frame_indices=None):
        """Picks k frames per video: [B, T, H, W, C] -> ([B, k, H, W, C], indices [B, k])."""
        if frame_indices is not None:
            indices = frame_indices
        else:
            if frame_seed is None:
                frame_seed = self.seed_generator.next()
            indices = sample_frame_indices(tf.shape(video)[0], self.num_frames, self.k, frame_seed)
        return tf.gather(video, indices, axis=1, batch_dims=1), indices

    def frame_scores(self, frames, labels, training=False):
        """Per-frame scores [B, k] float32 of already selected frames [B, k, H, W, 3]."""
        return self.project(self.features(frames, training=training), labels, training=training)

    def call(self, video, labels, training=False, frame_seed=None, frame_indices=None):
        check_video(video, self.num_frames, self.resolution, "D_S")
        labels = check_labels(labels, self.num_classes, "D_S")
        frames, _ = self.sample_frames(tf.cast(video, self.compute_dtype), frame_seed, frame_indices)
        return tf.reduce_sum(self.frame_scores(frames, labels, training=training), axis=1)


class TemporalDiscriminator(_ProjectionDiscriminator):
    """D_T: the whole clip after spatial average pooling by ``downsample``; the first ``num_3d_blocks`` blocks
    are 3-D (3x3x3 convs), the rest per-frame 2-D; scores are summed over time.

    call(video, labels, training=False) -> [B] float32; video [B, num_frames, resolution, resolution, 3].
    """

    def __init__(self, num_classes, num_frames, resolution, ch=128, channel_multipliers=None, downsample=2,
                 num_3d_blocks=2, pool_time=False, attention="separable", attention_resolutions=(),
                 table="biggan", kernel_initializer="orthogonal", remat=False, name="D_T", **kwargs):
        if downsample < 1 or resolution % downsample:
            raise ValueError(f"D_T.downsample must be a positive divisor of the resolution {resolution}, "
                             f"got {downsample}.")
        attn = lambda nm: make_attention(attention, kernel_initializer, name=nm)
        super().__init__(num_classes, num_frames, resolution, ch, channel_multipliers, attention_resolutions,
                         resolution // downsample, (3,) * num_3d_blocks, kernel_initializer, attn,
                         pool_time=pool_time, table=table, remat=remat, name=name, **kwargs)
        self.downsample = downsample

    def pool(self, video):
        """[B, T, H, W, C] -> [B, T, H/d, W/d, C] by d x d average pooling (d = downsample)."""
        return avgpool(video, self.downsample) if self.downsample > 1 else video

    def call(self, video, labels, training=False):
        check_video(video, self.num_frames, self.resolution, "D_T")
        labels = check_labels(labels, self.num_classes, "D_T")
        pooled = self.pool(tf.cast(video, self.compute_dtype))
        return tf.reduce_sum(self.project(self.features(pooled, training=training), labels, training), axis=1)


@gin.configurable("D_S", denylist=["kernel_initializer"])
def build_spatial_discriminator(num_classes=gin.REQUIRED, num_frames=gin.REQUIRED, resolution=gin.REQUIRED,
                                ch=128, channel_multipliers=None, k=8, attention_resolutions=(), seed=0,
                                table="biggan", kernel_initializer="orthogonal", remat=False):
    """The gin-configurable D_S factory (gin name ``D_S``). See ``SpatialDiscriminator``.

    remat: gradient checkpointing of every DBlock in training (``blocks.checkpointed``), as ``G.remat``."""
    check_settings("D_S", num_classes=num_classes, num_frames=num_frames, resolution=resolution, ch=ch,
                   channel_multipliers=channel_multipliers, k=k, attention_resolutions=attention_resolutions,
                   seed=seed)
    return SpatialDiscriminator(num_classes, num_frames, resolution, ch=ch,
                                channel_multipliers=channel_multipliers, k=k,
                                attention_resolutions=tuple(attention_resolutions), seed=seed, table=table,
                                kernel_initializer=kernel_initializer, remat=remat)


@gin.configurable("D_T", denylist=["kernel_initializer"])
def build_temporal_discriminator(num_classes=gin.REQUIRED, num_frames=gin.REQUIRED, resolution=gin.REQUIRED,
                                 ch=128, channel_multipliers=None, downsample=2, num_3d_blocks=2,
                                 pool_time=False, attention="separable", attention_resolutions=(),
                                 table="biggan", kernel_initializer="orthogonal", remat=False):
    """The gin-configurable D_T factory (gin name ``D_T``). See ``TemporalDiscriminator``.

    remat: gradient checkpointing of every DBlock in training (``blocks.checkpointed``), as ``G.remat``."""
    check_settings("D_T", num_classes=num_classes, num_frames=num_frames, resolution=resolution, ch=ch,
                   channel_multipliers=channel_multipliers, downsample=downsample, num_3d_blocks=num_3d_blocks,
                   attention_resolutions=attention_resolutions)
    return TemporalDiscriminator(num_classes, num_frames, resolution, ch=ch,
                                 channel_multipliers=channel_multipliers, downsample=downsample,
                                 num_3d_blocks=num_3d_blocks, pool_time=pool_time, attention=attention,
                                 attention_resolutions=tuple(attention_resolutions), table=table,
                                 kernel_initializer=kernel_initializer, remat=remat)
