"""One DVD-GAN training step under a tf.distribute strategy: D updates, a G update and the EMA of G.

Randomness (z, fake labels, D_S's frame choice) is stateless and keyed by (seed, step, purpose, replica), so a
run restored from a checkpoint at step s draws exactly what an uninterrupted run draws at step s.
"""
import tensorflow as tf

from dvdgan_tf.nets import standing_stats
from dvdgan_tf.training import losses
from dvdgan_tf.nets.generator import sample_latents

# Purposes mixed into the per-step random keys.
_Z, _LABEL, _FRAMES_D, _FRAMES_G = range(4)


class GanTrainer(tf.Module):
    """Holds the networks, optimizers, step counter and EMA generator; ``train_step`` runs one G step.

    Args:
      strategy: the tf.distribute strategy every variable was created under.
      networks: models.Networks (G, D_S, D_T), built. ema_generator: a built Generator of G's architecture.
      g_optimizer, d_optimizer: Keras optimizers built on G's and (D_S + D_T)'s trainable variables.
      global_batch_size: clips per D update over all replicas. d_steps: D updates per G update.
      ema_decay, ema_start_step: EMA of G's weights; before ema_start_step the EMA copies G.
      seed: int, the run's random seed. jit_compile: compile the per-replica steps with XLA.
    """

    def __init__(self, strategy, networks, ema_generator, g_optimizer, d_optimizer, global_batch_size,
                 d_steps=2, ema_decay=0.9999, ema_start_step=20000, seed=0, jit_compile=False):
        super().__init__(name="gan_trainer")
        self.strategy = strategy
        self.G, self.D_S, self.D_T = networks
        self.G_ema = ema_generator
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.global_batch_size = global_batch_size
        self.per_replica_batch = global_batch_size // strategy.num_replicas_in_sync
        self.d_steps, self.ema_decay, self.ema_start_step, self.seed = d_steps, ema_decay, ema_start_step, seed
        with strategy.scope():
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self._d_replica = tf.function(self._d_update, jit_compile=jit_compile)
        self._g_replica = tf.function(self._g_update, jit_compile=jit_compile)
        self.train_step = tf.function(self._train_step)

    def _key(self, purpose, d_index=0):
        """A [2] int64 stateless seed unique to (seed, step, purpose, D update, replica)."""
        key = tf.stack([tf.constant(self.seed, tf.int64),
                        self.step * 64 + purpose * 8 + tf.cast(d_index, tf.int64)])
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return tf.random.experimental.stateless_fold_in(key, tf.cast(replica, tf.int64))

    def _fake_batch(self, d_index):
        """Generated clips [b, T, H, W, 3] and their uniformly drawn labels [b] (b = per-replica batch)."""
        z = sample_latents(self.per_replica_batch, self.G.z_dim, seed=self._key(_Z, d_index))
        labels = tf.random.stateless_uniform([self.per_replica_batch], self._key(_LABEL, d_index),
                                             maxval=self.G.num_classes, dtype=tf.int32)
        return self.G(z, labels, training=True), labels

    def _mean(self, per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)

    def _d_update(self, video, labels, d_index):
        fake, fake_labels = self._fake_batch(d_index)
        # Real and fake clips go through each D as one batch: one pass of its layers (and of its spectral-norm
        # power iterations) instead of two. D has no batch statistics, so this changes no score.
        both = tf.concat([tf.cast(video, fake.dtype), fake], axis=0)
        both_labels = tf.concat([tf.cast(labels, tf.int32), fake_labels], axis=0)
        variables = self.D_S.trainable_variables + self.D_T.trainable_variables
        with tf.GradientTape() as tape:
            ds_real, ds_fake = tf.split(
                self.D_S(both, both_labels, training=True, frame_seed=self._key(_FRAMES_D, d_index)), 2)
            dt_real, dt_fake = tf.split(self.D_T(both, both_labels, training=True), 2)
            _, terms = losses.discriminator_loss(ds_real, ds_fake, dt_real, dt_fake)
            terms = {name: self._mean(value) for name, value in terms.items()}
            loss = tf.add_n(list(terms.values()))
        self.d_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return terms

    def _g_update(self):
        variables = self.G.trainable_variables
        with tf.GradientTape() as tape:
            fake, labels = self._fake_batch(self.d_steps)  # keys after the D updates' ones
            loss = self._mean(losses.generator_loss(
                self.D_S(fake, labels, training=True, frame_seed=self._key(_FRAMES_G, self.d_steps)),
                self.D_T(fake, labels, training=True)))
        self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"G_loss": loss}

    def _update_ema(self):
        """EMA of G's trainable weights (a copy before ema_start_step). G's BN statistics and SN vectors belong
        to G's weights, not G_ema's, and are not copied: ``refresh_ema`` computes G_ema's own."""
        decay = tf.where(self.step >= self.ema_start_step, self.ema_decay, 0.0)
        for ema, live in zip(self.G_ema.trainable_variables, self.G.trainable_variables):
            ema.assign(decay * ema + (1.0 - decay) * live)

    def refresh_ema(self):
        """Gives G_ema its own SN vectors (power iteration on its weights, started from G's vectors) and
        standing BN statistics (``standing_stats.recompute``, keyed by the run's seed and the step), unless they
        are already those of the current step. A pure function of the weights, G's vectors, seed and step: it
        changes no training state, so it may run at any time without breaking exact resume."""
        step = int(self.step.numpy())
        if getattr(self, "_refreshed_step", None) == step:
            return
        standing_stats.recompute(self.G_ema, self.strategy, seed=self.seed, step=step, sn_start=self.G)
        self._refreshed_step = step

    def _train_step(self, iterator):
        """d_steps D updates on d_steps batches from ``iterator``, one G update, the EMA; returns mean losses
        {D_S_real, D_S_fake, D_T_real, D_T_fake (of the last D update), G_loss} as float32 scalars."""
        metrics = {}
        for d_index in range(self.d_steps):
            video, labels = next(iterator)
            # d_index as a tensor: the replica step is traced once, not once per D update.
            metrics = self.strategy.run(self._d_replica, args=(video, labels, tf.constant(d_index, tf.int64)))
        metrics.update(self.strategy.run(self._g_replica))
        metrics = {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in metrics.items()}
        self._update_ema()
        self.step.assign_add(1)
        return metrics

    def copy_generator_to_ema(self):
        """Sets the EMA generator's weights to G's (at initialisation)."""
        for ema, live in zip(self.G_ema.variables, self.G.variables):
            ema.assign(live)
