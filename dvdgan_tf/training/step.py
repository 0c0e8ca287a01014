"""One DVD-GAN training step under a tf.distribute strategy: D updates, a G update and the EMA of G.

Randomness (z, fake labels, D_S's frame choice) is stateless and keyed by (seed, step, purpose, D update). It is
drawn for the GLOBAL batch (B clips) on every replica, and replica r takes rows [r*b, (r+1)*b) of each draw
(b = B / replicas), the rows its real clips hold in the global batch: a run at global batch B draws the same
numbers on 1, 2 or N replicas, and a run restored from a checkpoint at step s draws exactly what an uninterrupted
run draws at step s. The key is the one replica 0 used when draws were per replica, so one-replica runs draw
what they drew before.
"""
import contextlib

import tensorflow as tf

from dvdgan_tf.nets import standing_stats
from dvdgan_tf.nets.discriminators import sample_frame_indices
from dvdgan_tf.training import losses
from dvdgan_tf.nets.generator import sample_latents

# Purposes mixed into the per-step random keys.
_Z, _LABEL, _FRAMES_D, _FRAMES_G = range(4)


def _loss_names():
    _, terms = losses.discriminator_loss(*[tf.zeros([1])] * 4)
    return [*terms, "G_loss"]


@contextlib.contextmanager
def _tape_on(variables):
    """A gradient tape that watches ``variables`` only (the network being updated). A default tape watches every
    trainable variable it sees read, so the G update would also record, and back-propagate to, D's weights:
    kernel gradients nobody uses, which TensorFlow prunes only after tracing (and the rematerialised blocks'
    recomputation cannot skip)."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch([v.value for v in variables])  # the tf.Variable under each Keras variable
        yield tape


class GanTrainer(tf.Module):
    """Holds the networks, optimizers, step counter and EMA generator; ``train_steps`` runs G steps.

    Args:
      strategy: the tf.distribute strategy every variable was created under.
      networks: models.Networks (G, D_S, D_T), built. ema_generator: a built Generator of G's architecture.
      g_optimizer, d_optimizer: Keras optimizers built on G's and (D_S + D_T)'s trainable variables.
      global_batch_size: clips per D update over all replicas. d_steps: D updates per G update.
      ema_decay, ema_start_step: EMA of G's weights; before ema_start_step the EMA copies G.
      seed: int, the run's random seed. jit_compile: compile each replica's whole step (its D updates, the G
        update and the EMA) into one XLA computation.
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
        # DVD-GAN-FP: (contexts, labels) of real clips for G_ema's standing statistics (set by the loop).
        self.context_bank = None
        self._replica = tf.function(self._replica_step, jit_compile=True) if jit_compile else self._replica_step
        self._one_step = tf.function(self._train_step)
        self._loop = tf.function(self._train_loop)

    def train_steps(self, iterator, num_steps=1):
        """Runs ``num_steps`` (int >= 1) G steps inside one tf.function (the host stays out of the loop: one call
        per loop, as TPUs need); stops after a step whose losses are not all finite. Returns that last step's mean
        losses {D_S_real, D_S_fake, D_T_real, D_T_fake (of its last D update), G_loss}, float32 scalars."""
        if num_steps == 1:  # the plain step (no while loop)
            return self._one_step(iterator)
        return self._loop(iterator, tf.constant(num_steps, tf.int32))  # a tensor: one trace for any count

    def train_step(self, iterator):
        """One G step: ``train_steps(iterator, 1)``."""
        return self._one_step(iterator)

    def _key(self, step, purpose, d_index=0):
        """A [2] int64 stateless seed unique to (seed, step, purpose, D update), the same on every replica. The
        final fold-in of 0 makes it the key replica 0 drew from when draws were per replica."""
        key = tf.stack([tf.constant(self.seed, tf.int64), step * 64 + purpose * 8 + tf.constant(d_index, tf.int64)])
        return tf.random.experimental.stateless_fold_in(key, tf.constant(0, tf.int64))

    def _share(self, global_draw, offset=0):
        """This replica's rows [offset + r*b, offset + (r+1)*b) of a draw made for the global batch."""
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        start = offset + tf.cast(replica, tf.int32) * self.per_replica_batch
        return global_draw[start:start + self.per_replica_batch]

    def _fake_batch(self, step, d_index, real=None):
        """Generated clips [b, T, H, W, 3] and their uniformly drawn labels [b]: this replica's share of the
        global batch's z and labels.

        DVD-GAN-FP (G.context_frames = C > 0): ``real`` = (video, labels) of a real batch; the fakes continue its
        clips' contexts video[:, :C] and take its labels (the context's class), so no labels are drawn."""
        z = self._share(sample_latents(self.global_batch_size, self.G.z_dim, seed=self._key(step, _Z, d_index)))
        if self.G.context_frames:
            video, labels = real
            labels = tf.cast(labels, tf.int32)
            return self.G(z, labels, training=True, context=video[:, :self.G.context_frames]), labels
        labels = self._share(tf.random.stateless_uniform(
            [self.global_batch_size], self._key(step, _LABEL, d_index), maxval=self.G.num_classes, dtype=tf.int32))
        return self.G(z, labels, training=True), labels

    def _frame_indices(self, step, purpose, d_index, halves):
        """D_S's frames for this replica's clips: ``halves`` global batches (the real one, then the fake one, or
        only the fake one) get their frames drawn together, and this replica takes its rows of each."""
        drawn = sample_frame_indices(halves * self.global_batch_size, self.D_S.num_frames, self.D_S.k,
                                     self._key(step, purpose, d_index))
        return tf.concat([self._share(drawn, h * self.global_batch_size) for h in range(halves)], axis=0)

    def _mean(self, per_example):
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)

    def _d_update(self, step, video, labels, d_index):
        fake, fake_labels = self._fake_batch(step, d_index, (video, labels))
        # Real and fake clips go through each D as one batch: one pass of its layers (and of its spectral-norm
        # power iterations) instead of two. D has no batch statistics, so this changes no score.
        both = tf.concat([tf.cast(video, fake.dtype), fake], axis=0)
        both_labels = tf.concat([tf.cast(labels, tf.int32), fake_labels], axis=0)
        frames = self._frame_indices(step, _FRAMES_D, d_index, halves=2)
        variables = self.D_S.trainable_variables + self.D_T.trainable_variables
        with _tape_on(variables) as tape:
            ds_real, ds_fake = tf.split(self.D_S(both, both_labels, training=True, frame_indices=frames), 2)
            dt_real, dt_fake = tf.split(self.D_T(both, both_labels, training=True), 2)
            _, terms = losses.discriminator_loss(ds_real, ds_fake, dt_real, dt_fake)
            terms = {name: self._mean(value) for name, value in terms.items()}
            loss = tf.add_n(list(terms.values()))
        self.d_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return terms

    def _g_update(self, step, video=None, labels=None):
        """video, labels: DVD-GAN-FP only, the real batch of the last D update (its contexts and labels)."""
        variables = self.G.trainable_variables
        frames = self._frame_indices(step, _FRAMES_G, self.d_steps, halves=1)
        with _tape_on(variables) as tape:
            fake, labels = self._fake_batch(step, self.d_steps, (video, labels))  # keys after the D updates'
            loss = self._mean(losses.generator_loss(
                self.D_S(fake, labels, training=True, frame_indices=frames),
                self.D_T(fake, labels, training=True)))
        self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"G_loss": loss}

    def _update_ema(self, strategy, step):
        """EMA of G's trainable weights (a copy before ema_start_step), through the strategy's own variable
        update, as the optimizers update theirs (so it can sit inside the compiled replica step). G's BN
        statistics and SN vectors belong to G's weights, not G_ema's, and are not copied: ``refresh_ema``
        computes G_ema's own."""
        decay = tf.where(step >= self.ema_start_step, self.ema_decay, 0.0)
        for ema, live in zip(self.G_ema.trainable_variables, self.G.trainable_variables):
            strategy.extended.update(ema.value, lambda e, v: e.assign(decay * e + (1.0 - decay) * v),
                                     args=(live.value,), group=False)

    def _replica_step(self, step, batches):
        """One step on one replica: a D update on each (video, labels) of ``batches``, a G update, the EMA."""
        terms = {}
        for d_index, (video, labels) in enumerate(batches):
            terms = self._d_update(step, video, labels, d_index)
        # DVD-GAN-FP: the G update continues the contexts of the last D update's real batch.
        terms.update(self._g_update(step, *(batches[-1] if self.G.context_frames else ())))
        tf.__internal__.distribute.interim.maybe_merge_call(self._update_ema, self.strategy, step)
        return terms

    def _train_step(self, iterator):
        """d_steps D updates on d_steps batches from ``iterator``, one G update, the EMA; returns mean losses
        as float32 scalars."""
        batches = tuple(next(iterator) for _ in range(self.d_steps))
        step = self.step.read_value()  # passed in: the compiled replica step reads no replicated variable
        metrics = self.strategy.run(self._replica, args=(step, batches))
        metrics = {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in metrics.items()}
        self.step.assign_add(1)
        return metrics

    def _train_loop(self, iterator, num_steps):
        metrics = {name: tf.zeros([]) for name in _loss_names()}
        for _ in tf.range(num_steps):
            metrics = self._train_step(iterator)
            if not tf.reduce_all([tf.math.is_finite(v) for v in metrics.values()]):
                break
        return metrics

    def refresh_ema(self):
        """Gives G_ema its own SN vectors (power iteration on its weights, started from G's vectors) and
        standing BN statistics (``standing_stats.recompute``, keyed by the run's seed and the step), unless they
        are already those of the current step. A pure function of the weights, G's vectors, seed and step: it
        changes no training state, so it may run at any time without breaking exact resume."""
        step = int(self.step.numpy())
        if getattr(self, "_refreshed_step", None) == step:
            return
        standing_stats.recompute(self.G_ema, self.strategy, seed=self.seed, step=step, sn_start=self.G,
                                 contexts=self.context_bank)
        self._refreshed_step = step

    def copy_generator_to_ema(self):
        """Sets the EMA generator's weights to G's (at initialisation)."""
        for ema, live in zip(self.G_ema.variables, self.G.variables):
            ema.assign(live)
