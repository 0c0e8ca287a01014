"""Standing statistics of the EMA generator, as BigGAN computes them for its EMA samples.

G_ema's weights are an average of G's, so neither G's moving BN statistics nor G's spectral-norm vectors belong
to it. Before G_ema is sampled, exported or scored, ``recompute`` gives it its own:

1. spectral norm: the power iteration is run on G_ema's own weights (from a given start, by default its own
   vectors; the training loop starts from the live G's vectors, which are close) until the sigma estimate of
   every layer changes by less than 1e-6 relatively (at most ``power_iterations`` iterations), so each sigma is
   that of G_ema's weights (vectors already converged are left as they are);
2. BN statistics: G_ema runs in training mode on ``num_batches`` batches of ``batch_size`` fresh clips (z from
   N(0, I), or truncated as ``truncation`` says, and uniform labels), with its spectral-norm vectors held still.
   Every FrameBatchNorm's moving statistics [T, C] become the exact averages over those batches: the mean of the
   per-batch means, and the mean of the per-batch E[x^2] minus the squared mean (the statistics of all
   num_batches * batch_size clips as one batch; not a momentum average). Under a tf.distribute strategy each
   replica runs its share of every batch and the BN sums are all-reduced, so the result does not depend on the
   replica count (up to float rounding).

A frame-conditional G_ema (DVD-GAN-FP, ``G.context_frames`` = C > 0) also needs contexts: ``recompute`` takes a
fixed bank of real clips' contexts and labels (the training loop draws it once at start-up from the training
stream of the run's seed: the first ``CONTEXT_BANK_SIZE`` clips, ``training/loop.py``); batch b uses the bank's
clips b * batch_size ... (b + 1) * batch_size - 1, cyclically, with their own labels, and z drawn as above.

The result depends only on G_ema's weights, the start vectors, the seed and the step (z and labels are
stateless draws keyed by them): nothing else in the training state is read or changed (G_ema's weights, no
random generator, no optimizer), so recomputing at any time keeps resumed runs exact.

Cost: num_batches * batch_size clips through G_ema in training mode (about a third of a training step of that
many clips), plus the power iterations (matrix-vector products; negligible).
"""
import weakref

import gin
import numpy as np
import tensorflow as tf

from dvdgan_tf.nets import normalization
from dvdgan_tf.nets import truncation as truncation_lib
from dvdgan_tf.nets.generator import sample_latents
from dvdgan_tf.nets.spectral_norm import SpectralNormLayer, frozen_vectors, spectral_norm_step

_PURPOSE = 0x5374  # mixed into the keys: a stream of its own, apart from the training step's
CONTEXT_BANK_SIZE = 256  # real contexts a frame-conditional run keeps for the standing statistics (cycled)
_TRACED = weakref.WeakKeyDictionary()  # generator -> {(strategy, per-replica batch, truncation, convention): fn}


def _layers(generator, kind):
    """generator's sub-layers of type ``kind``, in a fixed order (the checkpoint's dependency order)."""
    seen, found = set(), []
    for obj in tf.train.TrackableView(generator).descendants():
        if isinstance(obj, kind) and id(obj) not in seen:
            seen.add(id(obj))
            found.append(obj)
    return found


def spectral_norm_layers(generator):
    """The layers of ``generator`` that are spectrally normalised."""
    return [layer for layer in _layers(generator, SpectralNormLayer) if layer.use_sn]


def batch_norm_layers(generator):
    return _layers(generator, normalization.FrameBatchNorm)


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([1, None], tf.float32),
                              tf.TensorSpec([], tf.int32)])
def _power_iterate(w_mat, u, max_iterations):
    """Power iteration from u until sigma's estimate changes by <= 1e-6 relatively; returns the last u before
    that step, so an already converged u comes back unchanged (recomputing twice gives the same result)."""
    sigma, u_next = spectral_norm_step(w_mat, u)

    def body(i, u, sigma, u_next, _):
        new_sigma, u_after = spectral_norm_step(w_mat, u_next)
        change = tf.abs(new_sigma - sigma) / (tf.abs(new_sigma) + 1e-12)
        moving = change > 1e-6
        return (i + 1, tf.where(moving, u_next, u), tf.where(moving, new_sigma, sigma),
                tf.where(moving, u_after, u_next), change)

    _, u, _, _, _ = tf.while_loop(lambda i, u, s, u_next, change: tf.logical_and(i < max_iterations, change > 1e-6),
                                  body, (tf.constant(0), u, sigma, u_next, tf.constant(1.0)))
    return u


def power_iterate(generator, start_from=None, max_iterations=1000):
    """Sets every spectral-norm vector u of ``generator`` to the power iteration's estimate on its own weights,
    starting from ``start_from``'s vectors (a generator of the same architecture; default: its own)."""
    layers = spectral_norm_layers(generator)
    starts = layers if start_from is None else spectral_norm_layers(start_from)
    if len(starts) != len(layers):
        raise ValueError(f"start_from has {len(starts)} spectrally normalised layers, the generator "
                         f"{len(layers)}: not the same architecture.")
    for layer, start in zip(layers, starts):
        u = _power_iterate(layer.kernel_matrix(), tf.convert_to_tensor(start.sn_u), tf.constant(max_iterations))
        layer.sn_u.assign(u)


def _key(seed, step, batch):
    key = tf.stack([tf.constant(seed, tf.int64), tf.constant(_PURPOSE, tf.int64)])
    key = tf.random.experimental.stateless_fold_in(key, tf.cast(step, tf.int64))
    return tf.random.experimental.stateless_fold_in(key, tf.cast(batch, tf.int64))


def _batch_moments_fn(generator, strategy, per_replica, truncation, convention):
    """A tf.function(key[, contexts, labels]) -> [(E[x], E[x^2]) per FrameBatchNorm] over one global batch drawn
    from key (with a frame-conditional generator: of the global batch's contexts and labels)."""
    cache = _TRACED.setdefault(generator, {})
    name = (id(strategy), per_replica, truncation, convention)
    conditional = bool(getattr(generator, "context_frames", 0))
    if name in cache:
        return cache[name]
    replicas = strategy.num_replicas_in_sync
    size = per_replica * replicas
    layers = []

    def replica_fn(key, contexts=None, real_labels=None):
        ctx = tf.distribute.get_replica_context()
        replica = ctx.replica_id_in_sync_group
        z = sample_latents(size, generator.z_dim, seed=tf.random.experimental.stateless_fold_in(key, 0),
                           truncation=truncation, convention=convention)
        if contexts is None:
            labels = tf.random.stateless_uniform([size], tf.random.experimental.stateless_fold_in(key, 1),
                                                 maxval=generator.num_classes, dtype=tf.int32)
        else:
            labels = real_labels
            contexts = tf.reshape(contexts, [replicas, per_replica] + contexts.shape[1:].as_list())[replica]
        z = tf.reshape(z, [replicas, per_replica, generator.z_dim])[replica]  # this replica's share
        labels = tf.reshape(labels, [replicas, per_replica])[replica]
        with normalization.collect_moments() as sink, frozen_vectors():
            generator(z, labels, training=True, context=contexts)
        if not layers:
            layers.extend(layer for layer, _, _ in sink)
        return [(mean, mean_sq) for _, mean, mean_sq in sink]

    if conditional:
        @tf.function
        def batch_moments(key, contexts, labels):
            return strategy.run(replica_fn, args=(key, contexts, labels))
    else:
        @tf.function
        def batch_moments(key):
            return strategy.run(replica_fn, args=(key,))

    cache[name] = (batch_moments, layers)
    return cache[name]


@gin.configurable("standing_stats", allowlist=["num_batches", "batch_size", "power_iterations"])
def recompute(generator, strategy=None, seed=0, step=0, num_batches=16, batch_size=16, power_iterations=1000,
              sn_start=None, truncation=None, convention=truncation_lib.RESAMPLE, contexts=None):
    """Gives ``generator`` (G_ema) its own spectral-norm vectors and standing BN statistics (module docstring).

    Args:
      generator: a built Generator; its weights are not changed.
      strategy: the strategy its variables were created under (default: the current one). Call from the cross-
        replica context (not inside strategy.run): it runs its own strategy.run per batch.
      seed, step: key the z and label draws (deterministic from them).
      num_batches, batch_size: (gin ``standing_stats.*``) batches averaged, clips per batch over all replicas
        (rounded up to a multiple of the replica count).
      power_iterations: (gin) at most this many power iterations per spectral-norm layer.
      sn_start: a generator of the same architecture whose vectors start the power iteration (default: its own).
      truncation, convention: None / 0 (z from N(0, I)) or the truncation the samples will use, and its
        convention ('resample' or 'scaled', ``nets.truncation``), passed to ``sample_latents``.
      contexts: required for a frame-conditional generator (context_frames C > 0), else ignored: a bank
        (contexts [N, C, H, W, 3] float32 in [-1, 1], labels [N] int32) of real clips' first C frames and their
        labels (module docstring).
    Returns:
      {FrameBatchNorm layer: (mean, variance)} as float32 NumPy arrays [T, C], as assigned.
    """
    if num_batches < 1 or batch_size < 1 or power_iterations < 1:
        raise ValueError(f"standing_stats needs num_batches, batch_size and power_iterations >= 1, got "
                         f"{num_batches}, {batch_size}, {power_iterations}.")
    convention, truncation = truncation_lib.check(convention, truncation)
    strategy = strategy or tf.distribute.get_strategy()
    power_iterate(generator, sn_start, power_iterations)
    per_replica = -(-batch_size // strategy.num_replicas_in_sync)
    batch_moments, layers = _batch_moments_fn(generator, strategy, per_replica, truncation, convention)
    size = per_replica * strategy.num_replicas_in_sync
    if getattr(generator, "context_frames", 0):
        if contexts is None:
            raise ValueError("standing statistics of a frame-conditional generator (G.context_frames > 0) need "
                             "a bank of real contexts: pass contexts=(contexts, labels).")
        bank, bank_labels = np.asarray(contexts[0], np.float32), np.asarray(contexts[1], np.int32)
    sums = None
    for batch in range(num_batches):
        if getattr(generator, "context_frames", 0):
            rows = (batch * size + np.arange(size)) % len(bank)
            moments = batch_moments(_key(seed, step, batch), tf.constant(bank[rows]), tf.constant(bank_labels[rows]))
        else:
            moments = batch_moments(_key(seed, step, batch))
        # After the all-reduce every replica holds the global batch's moments: take the first replica's.
        moments = [[np.asarray(strategy.experimental_local_results(m)[0], np.float64) for m in pair]
                   for pair in moments]
        sums = moments if sums is None else [[s + m for s, m in zip(sp, mp)] for sp, mp in zip(sums, moments)]
    result = {}
    for layer, (total, total_sq) in zip(layers, sums):
        mean = total / num_batches
        variance = np.maximum(total_sq / num_batches - np.square(mean), 0.0)
        if not layer.per_frame:  # the old per-channel layout (normalization.channel_statistics): frame averages
            mean, variance = mean.mean(0), variance.mean(0)
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(variance.astype(np.float32))
        result[layer] = (mean.astype(np.float32), variance.astype(np.float32))
    return result
