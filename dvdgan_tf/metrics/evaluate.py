"""Computing named metrics for a generator against real data: the one code path of training and dvdgan-eval.

``compute_metrics(generate_fn, real_batches, metric_names, ...)`` runs every requested protocol (see
``protocols``) in one pass over the real data and one over the generated clips: each network sees each clip
once, FVD / FID reduce activations to streaming moments, IS keeps only logits. ``evaluate_generator`` does the
same for an exported generator (the SavedModel users ship), and ``append_jsonl`` / ``write_json`` store records.
Given a tf.distribute strategy, both run over its replicas with values independent of the replica count (see
"Evaluation over replicas" below).
"""
import contextlib
import json
import os
import time

import numpy as np
import tensorflow as tf

from dvdgan_tf.export import saved_model as export_lib
from dvdgan_tf.errors import ConfigError, DataError
from dvdgan_tf.metrics import c3d as c3d_lib
from dvdgan_tf.metrics import classifiers, frechet, fvd, inception_score, preprocess
from dvdgan_tf.metrics import protocols as protocols_lib
from dvdgan_tf.io import files
from dvdgan_tf.io.console import ProgressBar
from dvdgan_tf.nets import truncation as truncation_lib


def _videos_of(batch):
    """The videos of a dataset element: a (video, label) tuple, a {'video': ...} dict, or the videos alone."""
    if isinstance(batch, (tuple, list)):
        batch = batch[0]
    elif isinstance(batch, dict):
        if "video" not in batch:
            raise DataError(f"a real batch dict needs a 'video' entry, has {sorted(batch)}.")
        batch = batch["video"]
    return batch.numpy() if isinstance(batch, tf.Tensor) else np.asarray(batch)


def _resolve_i3d(i3d):
    return i3d if isinstance(i3d, classifiers.VideoClassifier) else classifiers.load_i3d(i3d)


def _resolve_c3d(c3d):
    if isinstance(c3d, c3d_lib.C3DClassifier):
        return c3d
    weights, mean = c3d if c3d else (None, None)
    return c3d_lib.load_c3d(weights, mean)


class _Accumulator:
    """What one protocol keeps from the clips of one source (real or generated)."""

    def __init__(self, protocol, wanted):
        self.protocol, self.wanted = protocol, wanted
        self.moments = None
        self.logits = []
        self.count = 0

    @property
    def done(self):
        return self.count >= self.wanted

    def add(self, outputs):
        rows = outputs[self.protocol.output][:self.wanted - self.count]
        if self.protocol.kind in ("fvd", "fid", "fvdpred"):
            if self.moments is None:
                self.moments = frechet.RunningMoments(rows.shape[1])
            self.moments.update(rows)
        else:
            self.logits.append(rows)
        self.count += rows.shape[0]


def _feed(accumulators, videos, networks):
    """Runs the networks the unfinished accumulators need on videos and hands each its outputs."""
    active = [a for a in accumulators if not a.done]
    outputs = {}
    for name in {a.protocol.network for a in active}:
        frames = {a.protocol.num_frames for a in active if a.protocol.network == name}.pop()
        if name == "i3d":
            outputs[name] = networks["i3d"].outputs(videos, num_frames=frames)
        else:
            outputs[name] = {"logits": networks["c3d"].logits(videos)}
        classifiers.check_outputs(outputs[name], name)
    for acc in active:
        acc.add(outputs[acc.protocol.network])


def _check_protocols(protocols, networks):
    frames = {p.num_frames for p in protocols}
    if len(frames) > 1:
        raise ConfigError(f"metrics {[p.name for p in protocols]} use different clip lengths {sorted(frames)}; one "
                          f"evaluation covers one clip length (the generator's). Evaluate them separately.")
    if any(p.output == "features" for p in protocols) and not networks["i3d"].has_features:
        raise ConfigError(f"FID needs average-pool features, but the I3D module {networks['i3d'].identity} only "
                          f"returns logits. Use the built-in I3D or a dvdgan-export-i3d export.")


def _real_moments(real_batches, protocols, networks, bar):
    """{protocol name: RunningMoments} of the first num_samples real clips for each protocol."""
    if real_batches is None:
        raise _no_real_data(protocols)
    accumulators = [_Accumulator(p, p.num_samples) for p in protocols]
    total = max(p.num_samples for p in protocols)
    seen = 0
    for batch in real_batches:
        videos = _videos_of(batch)[:total - seen]
        _feed(accumulators, videos, networks)
        seen += len(videos)
        bar.update(seen)
        if all(a.done for a in accumulators):
            return {a.protocol.name: a.moments for a in accumulators}
    raise _too_little_real(seen, accumulators)


def _no_real_data(protocols):
    return ConfigError(f"{[p.name for p in protocols]} need real data and no cached statistics exist: give a "
                       f"dataset (dvdgan-eval --gin_file or --real_npz).")


def _generated(generate_fn, protocols, networks, batch_size, bar, offset):
    accumulators = [_Accumulator(p, p.num_generated) for p in protocols]
    total = max(p.num_generated for p in protocols)
    count = 0
    while count < total:
        n = min(batch_size, total - count)
        videos = generate_fn(n)
        videos = videos.numpy() if isinstance(videos, tf.Tensor) else np.asarray(videos)
        if videos.shape[0] != n:
            raise DataError(f"generate_fn({n}) returned {videos.shape[0]} videos.")
        _feed(accumulators, videos, networks)
        count += n
        bar.update(offset + count)
    return {a.protocol.name: a for a in accumulators}


# ---- Evaluation over replicas -----------------------------------------------------------------------------------
# With a tf.distribute strategy, the clips are cut into chunks of ``batch_size`` clips (the per-replica batch):
# chunk c holds clips c * batch_size ... (c + 1) * batch_size - 1, and each generated clip's z and label depend
# only on its index and the seed. R replicas run chunks c ... c + R - 1 at once (``strategy.run``); the host
# collects their outputs and feeds them to the accumulators in chunk order, each chunk's float64 moments merged
# into the running ones with Chan's formula. Every network call therefore sees the same batch whatever R is, and
# the same float64 arithmetic follows: a metric does not depend on the replica count.


def uses_replicas(strategy):
    """Whether ``compute_metrics`` takes the replica path for ``strategy``: any strategy but None and the default
    one (which keeps the host path of before, unchanged)."""
    return strategy is not None and type(strategy).__name__ != "_DefaultDistributionStrategy"


def clip_inputs(start, n, z_dim, num_classes, truncation=0.0, seed=0, convention=truncation_lib.RESAMPLE):
    """(z [n, z_dim] float32, labels [n] int32) of generated clips start ... start + n - 1.

    Clip i's come from (seed, i) alone, so a clip is the same whichever chunk and replica make it. z: the shared
    truncation function (``truncation.clip_latents``): N(0, I) when truncation is 0 / None, else truncated under
    ``convention`` ('resample': N(0, I) truncated to [-t, t]; 'scaled': t * truncnorm(-2, 2)). Labels uniform
    over [0, num_classes), from a NumPy generator seeded with (seed, i).
    """
    z = truncation_lib.clip_latents(seed, start, n, z_dim, convention, truncation)
    labels = np.empty(n, np.int32)
    for row in range(n):
        labels[row] = np.random.default_rng([abs(int(seed)), int(seed < 0), start + row]).integers(num_classes)
    return z, labels


class GeneratedClips:
    """A generator for evaluation over replicas: generated clips as a function of their index.

    Args:
      videos_fn: (z [n, z_dim] float32, labels [n] int32) -> videos [n, T, H, W, 3] float in [-1, 1], a
        TensorFlow-traceable function (it runs inside ``strategy.run``): the generator, or an export's signature.
      z_dim, num_classes: the generator's. clip_shape: (T, H, W, 3) of its clips.
      truncation, seed, convention: see ``clip_inputs``.
    """

    def __init__(self, videos_fn, z_dim, num_classes, clip_shape, truncation=0.0, seed=0,
                 convention=truncation_lib.RESAMPLE):
        self.videos_fn, self.z_dim, self.num_classes = videos_fn, int(z_dim), int(num_classes)
        self.clip_shape = None if clip_shape is None else tuple(clip_shape)
        self.convention, self.truncation = truncation_lib.check(convention, truncation)
        self.seed = seed

    def inputs(self, start, n):
        return clip_inputs(start, n, self.z_dim, self.num_classes, self.truncation, self.seed, self.convention)

    def sequential(self):
        """generate_fn(n) for the host path (no strategy): the next n clips, counting on from clip 0 across
        calls: the same clips, with the same z and labels, as evaluation over replicas makes."""
        count = [0]

        def generate(n):
            z, labels = self.inputs(count[0], n)
            count[0] += n
            return self.videos_fn(tf.constant(z), tf.constant(labels))

        return generate


# ---- Prediction (DVD-GAN-FP): FVD of continuations of real clips' context frames ---------------------------------

RUN_STRIDE = 2 ** 32  # run r's z for real clip i is clip_latents' clip r * RUN_STRIDE + i


class PredictedClips:
    """A prediction model for the prediction protocols (``protocols`` kind 'fvdpred'): clips as a function of the
    real clips' contexts.

    Args:
      predict_fn: (context [n, C, H, W, 3] float32 in [-1, 1], z [n, z_dim] float32, labels [n] int32) -> videos
        [n, T, H, W, 3] float in [-1, 1], the whole clips (context included): the generator, or an export's
        ``predict`` signature.
      z_dim, num_classes, context_frames: the model's. clip_shape: (T, H, W, 3) of its clips.
      truncation, seed, convention: z of run r for real clip i is ``truncation.clip_latents``' clip
        r * RUN_STRIDE + i under (seed, convention, truncation): a function of (seed, run, clip index) only.
    """

    def __init__(self, predict_fn, z_dim, num_classes, context_frames, clip_shape, truncation=0.0, seed=0,
                 convention=truncation_lib.RESAMPLE):
        self.predict_fn, self.z_dim, self.num_classes = predict_fn, int(z_dim), int(num_classes)
        self.context_frames = int(context_frames)
        self.clip_shape = None if clip_shape is None else tuple(clip_shape)
        self.convention, self.truncation = truncation_lib.check(convention, truncation)
        self.seed = seed

    def latents(self, run, start, n):
        """z [n, z_dim] of run ``run`` for real clips start ... start + n - 1."""
        return truncation_lib.clip_latents(self.seed, run * RUN_STRIDE + start, n, self.z_dim, self.convention,
                                           self.truncation)

    def predict(self, real, labels, run, start):
        """The continuations [n, T, H, W, 3] (NumPy) of real clips start ... (``real`` [n, T', H, W, 3], uint8 or
        float in [-1, 1]; their first C frames are the context) in run ``run``."""
        context = real[:, :self.context_frames]
        if context.dtype == np.uint8:
            context = context.astype(np.float32) / 127.5 - 1.0
        z = self.latents(run, start, len(real))
        videos = self.predict_fn(tf.constant(np.asarray(context, np.float32)), tf.constant(z),
                                 tf.constant(np.asarray(labels, np.int32)))
        return videos.numpy() if isinstance(videos, tf.Tensor) else np.asarray(videos)


def _labels_of(batch, n, num_classes):
    """The real clips' labels (a (video, label) element), zeros for a source without labels; checked against
    the model's class count."""
    labels = None
    if isinstance(batch, (tuple, list)) and len(batch) > 1:
        labels = batch[1]
    elif isinstance(batch, dict) and "label" in batch:
        labels = batch["label"]
    if labels is None:
        return np.zeros(n, np.int32)
    labels = np.asarray(labels.numpy() if isinstance(labels, tf.Tensor) else labels).astype(np.int32).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"the real clips' labels reach {int(labels.max())}, outside the model's class range "
                        f"[0, {num_classes}): evaluate with the data the model was trained on.")
    return labels[:n]


def _check_prediction_protocols(clips, protocols):
    bad = [p.name for p in protocols if not p.is_prediction]
    if bad:
        raise ConfigError(f"this is a prediction model (it continues {clips.context_frames} real frames): score it "
                          f"with the prediction protocols (fvdpred_bair, fvdpred_k600, fvdpred<N>x<R>_<C>c<T>f), "
                          f"not {bad}.")
    wrong = [p.name for p in protocols if p.context_frames != clips.context_frames]
    if wrong:
        raise ConfigError(f"{wrong} condition on other context-frame counts than this model's "
                          f"{clips.context_frames} (G.context_frames); use fvdpred<N>x<R>_{clips.context_frames}c"
                          f"<T>f, e.g. fvdpred256x1_{clips.context_frames}c{protocols[0].num_frames}f.")


def check_model_protocols(generate, metric_names):
    """The Protocols of ``metric_names`` after checking that they fit the model: prediction protocols (and only
    they, with its context-frame count) for a ``PredictedClips``, synthesis protocols for any other generator.
    ConfigError naming the fix otherwise."""
    protocols = protocols_lib.parse_metric_list(metric_names)
    if isinstance(generate, PredictedClips):
        _check_prediction_protocols(generate, protocols)
    elif any(p.is_prediction for p in protocols):
        raise ConfigError(f"{[p.name for p in protocols if p.is_prediction]} score a prediction model (one with "
                          f"context frames, G.context_frames > 0); this generator synthesises clips from z alone: "
                          f"use fvd<N>_<T>f and the other synthesis protocols.")
    return protocols


def _prediction_metrics(clips, real_batches, protocols, networks, cache, dataset_key, bar):
    """{name: mean FVD over runs, name_std: std over runs} of the prediction protocols: one pass over the real
    clips; per batch, the real clips' I3D outputs (unless cached) and, for every run, the continuations of the
    same clips' contexts."""
    _check_prediction_protocols(clips, protocols)
    if real_batches is None:
        raise ConfigError(f"{[p.name for p in protocols]} need real clips: their contexts are what the model "
                          f"continues (dvdgan-eval --gin_file or --real_npz; cached statistics are not enough).")
    real = {p.name: cache.load(p, networks["i3d"].identity, dataset_key) for p in protocols}
    real_acc = {p.name: _Accumulator(p, p.num_samples) for p in protocols if real[p.name] is None}
    runs = {p.name: [_Accumulator(p, p.num_samples) for _ in range(p.num_runs)] for p in protocols}
    total = max(p.num_samples for p in protocols)
    seen, done = 0, 0
    for batch in real_batches:
        videos = _videos_of(batch)[:total - seen]
        if not len(videos):
            break
        preprocess.check_videos(videos, "real videos")
        labels = _labels_of(batch, len(videos), clips.num_classes)
        wanted = [a for a in real_acc.values() if not a.done]
        if wanted:
            _feed(wanted, videos, networks)
        for r in range(max(p.num_runs for p in protocols)):
            active = [accs[r] for accs in runs.values() if r < len(accs) and not accs[r].done]
            if not active:
                continue
            generated = clips.predict(videos, labels, r, seen)
            if generated.shape[0] != len(videos) or (clips.clip_shape and generated.shape[1:] != clips.clip_shape):
                raise DataError(f"the prediction model returned videos of shape {list(generated.shape)} for "
                                f"{len(videos)} contexts; expected [{len(videos)}, "
                                f"{', '.join(str(d) for d in clips.clip_shape or ('T', 'H', 'W', 3))}].")
            preprocess.check_videos(generated, "predicted videos")
            _feed(active, generated, networks)
            done += len(videos)
            bar.update(done)
        seen += len(videos)
        if seen >= total:
            break
    short = [p for p in protocols if runs[p.name][0].count < p.num_samples]
    if short:
        raise DataError(f"the real data ended after {seen} clips: "
                        f"{'; '.join(f'{p.name} needs {p.num_samples}' for p in short)}. Use the whole test split, "
                        f"or a protocol with fewer clips (fvdpred<N>x<R>_<C>c<T>f).")
    for name, acc in real_acc.items():
        cache.save(acc.protocol, networks["i3d"].identity, dataset_key, acc.moments)
        real[name] = acc.moments
    results = {}
    for p in protocols:
        values = [frechet.frechet_distance_from_moments(real[p.name], acc.moments) for acc in runs[p.name]]
        results[p.name] = float(np.mean(values))
        if p.num_runs > 1:
            results[p.name + "_std"] = float(np.std(values))
    return results


def _check_clip_shape(clip_shape, dtype, protocols, networks):
    """The frame-count checks of the host path (``to_network_input`` / ``c3d_input``) for clips of one shape."""
    empty = np.zeros((0,) + tuple(clip_shape), dtype)
    for p in protocols:
        if p.network == "i3d":
            preprocess.to_network_input(empty, networks["i3d"].input_size, networks["i3d"].min_frames, p.num_frames)
        else:
            c3d_lib.c3d_input(empty, networks["c3d"].mean)


def merge_moments(states):
    """Merges RunningMoments states in the given order (Chan's formula): THE place where moments computed apart
    come together. One host merges its chunks' moments in chunk order as they arrive (``_Accumulator``); several
    hosts (MultiWorkerMirroredStrategy, not wired yet) would each merge a contiguous range of chunks and then
    merge the per-host states here, in host order, after gathering them (``RunningMoments.state``)."""
    merged = None
    for state in states:
        merged = frechet.RunningMoments(state.dim) if merged is None else merged
        merged.merge(state)
    return merged


class _Replicas:
    """Runs the generator and the metric networks on per-replica chunks of ``chunk`` clips under ``strategy``."""

    def __init__(self, strategy, chunk, protocols, networks):
        self.strategy, self.chunk, self.networks = strategy, chunk, networks
        self.num_replicas = strategy.num_replicas_in_sync
        self.names = sorted({p.network for p in protocols})
        for name in self.names:
            if name == "i3d" and networks["i3d"].tensor_fn is None:
                raise ConfigError(f"the I3D network {networks['i3d'].identity} runs only on the host and cannot "
                                  f"run per replica; evaluate with the default strategy, or use the built-in I3D "
                                  f"or an I3D SavedModel.")
        self.real_step = self._distributed(self._outputs)
        self._generated_steps = []

    def _distributed(self, fn):
        """One tf.function around ``strategy.run(fn)`` (traced once per input shape; a tf.function given to
        strategy.run directly is wrapped anew, and traced again, at every call)."""
        return tf.function(lambda *args: self.strategy.run(fn, args=args))

    def _outputs(self, videos):
        """In replica context: {'range': [min, max] of videos, network name: {'logits': ..., 'features': ...}}."""
        out = {"range": tf.stack([tf.reduce_min(tf.cast(videos, tf.float32)),
                                  tf.reduce_max(tf.cast(videos, tf.float32))])}
        for name in self.names:
            if name == "i3d":
                net = self.networks["i3d"]
                x = 2.0 * preprocess.resize_frames_tf1(preprocess.to_0_255(videos), net.input_size) / 255.0 - 1.0
                result = net.tensor_fn(x)
                out["i3d"] = {key: tf.cast(result[key], tf.float32) for key in
                              (("logits", "features") if net.has_features else ("logits",))}
            else:
                c3d = self.networks["c3d"]
                out["c3d"] = {"logits": tf.cast(c3d.model(c3d_lib.c3d_input_tensor(videos, c3d.mean)), tf.float32)}
        return out

    def generated_step(self, clips):
        """The step of a GeneratedClips (kept, with the clips themselves, for the last two seen)."""
        for known, step in self._generated_steps:
            if known is clips:
                return step
        step = self._distributed(lambda z, labels: self._outputs(clips.videos_fn(z, labels)))
        self._generated_steps = self._generated_steps[-1:] + [(clips, step)]
        return step

    def run(self, step, chunk_inputs, num_chunks):
        """step: ``real_step`` or a ``generated_step``. Yields the host outputs of chunks 0 ... num_chunks - 1,
        in order. Round k gives replica r chunk k * R + r; replicas past the last chunk run the last chunk again
        (dropped), so all run the same shapes."""
        replicas = self.num_replicas
        for first in range(0, num_chunks, replicas):
            ids = [min(first + r, num_chunks - 1) for r in range(replicas)]
            inputs = {c: chunk_inputs(c) for c in sorted(set(ids))}
            args = tuple(self.strategy.experimental_distribute_values_from_function(
                lambda ctx, k=k: tf.convert_to_tensor(inputs[ids[ctx.replica_id_in_sync_group]][k]))
                for k in range(len(inputs[ids[0]])))
            outputs = step(*args)
            # To the host, replica by replica (multi-host: only this host's replicas; see merge_moments).
            leaves = [[np.asarray(t) for t in self.strategy.experimental_local_results(v)]
                      for v in tf.nest.flatten(outputs)]
            for r in range(min(replicas, num_chunks - first)):
                chunk = tf.nest.pack_sequence_as(outputs, [leaf[r] for leaf in leaves])
                for name in self.names:
                    classifiers.check_outputs(chunk[name], name)
                yield chunk


_REPLICAS = []  # the last few _Replicas with what they were made for: training evaluates the same way every time


def _replicas_for(strategy, chunk, protocols, networks):
    """A _Replicas for these settings, re-used (with its traced functions) when the same objects come again."""
    key = (strategy, chunk, networks["i3d"], networks["c3d"], tuple(sorted({p.network for p in protocols})))
    for known, replicas in _REPLICAS:
        if len(known) == len(key) and all(a is b or a == b for a, b in zip(known, key)):
            return replicas
    replicas = _Replicas(strategy, chunk, protocols, networks)
    _REPLICAS[:] = _REPLICAS[-3:] + [(key, replicas)]
    return replicas


class _RealChunks:
    """Real clips from batches of any size, cut into chunks of ``size`` clips (the last padded with copies of its
    last clip; those rows are beyond what any metric takes). Chunks are asked for in order."""

    def __init__(self, real_batches, size, total, protocols, networks):
        self._iter, self.size, self.total = iter(real_batches), size, total
        self._protocols, self._networks = protocols, networks
        self._pending, self._first, self.seen = [], 0, 0  # _first: index of the first clip in _pending

    def __call__(self, c):
        start, end = c * self.size, min((c + 1) * self.size, self.total)
        while self._first + sum(len(v) for v in self._pending) < end:
            try:
                batch = next(self._iter)
            except StopIteration:
                raise _RealDataEnded(self._first + sum(len(v) for v in self._pending)) from None
            videos = _videos_of(batch)
            preprocess.check_videos(videos)
            _check_clip_shape(videos.shape[1:], videos.dtype, self._protocols, self._networks)
            self._pending.append(videos)
        held = np.concatenate(self._pending)
        rows = held[start - self._first:end - self._first]
        self._pending, self._first = [held[end - self._first:]], end
        if len(rows) < self.size:
            rows = np.concatenate([rows, np.repeat(rows[-1:], self.size - len(rows), axis=0)])
        return (rows,)


class _RealDataEnded(Exception):
    def __init__(self, seen):
        super().__init__(seen)
        self.seen = seen


def _too_little_real(seen, accumulators):
    short = [f"{a.protocol.name} needs {a.wanted}" for a in accumulators if a.wanted > seen]
    return DataError(f"the real data ended after {seen} clips: {'; '.join(short)}. Use a larger dataset (or the "
                     f"training split, which repeats), or a protocol with fewer samples.")


def _real_moments_replicas(real_batches, protocols, networks, bar, replicas):
    if real_batches is None:
        raise _no_real_data(protocols)
    accumulators = [_Accumulator(p, p.num_samples) for p in protocols]
    total = max(p.num_samples for p in protocols)
    num_chunks = -(-total // replicas.chunk)
    chunks = _RealChunks(real_batches, replicas.chunk, total, protocols, networks)
    try:
        for c, outputs in enumerate(replicas.run(replicas.real_step, chunks, num_chunks)):
            for acc in accumulators:
                acc.add(outputs[acc.protocol.network])
            bar.update(min((c + 1) * replicas.chunk, total))
    except _RealDataEnded as ended:
        raise _too_little_real(ended.seen, accumulators) from None
    return {a.protocol.name: a.moments for a in accumulators}


def _generated_replicas(clips, protocols, networks, bar, offset, replicas):
    _check_clip_shape(clips.clip_shape, np.float32, protocols, networks)
    accumulators = [_Accumulator(p, p.num_generated) for p in protocols]
    total = max(p.num_generated for p in protocols)
    size = replicas.chunk
    for c, outputs in enumerate(replicas.run(replicas.generated_step(clips),
                                             lambda c: clips.inputs(c * size, size), -(-total // size))):
        lo, hi = (float(v) for v in outputs["range"])
        if not (lo >= -1 - preprocess.RANGE_TOLERANCE and hi <= 1 + preprocess.RANGE_TOLERANCE):
            raise DataError(f"the generator made videos with values in [{lo:.4g}, {hi:.4g}]; float videos must "
                            f"have values in [-1, 1].")
        for acc in accumulators:
            acc.add(outputs[acc.protocol.network])
        bar.update(offset + min((c + 1) * size, total))
    return {a.protocol.name: a for a in accumulators}


def _score(protocol, real, generated):
    """(value, std or None) of one protocol from its accumulated statistics."""
    if protocol.kind in ("fvd", "fid"):
        return frechet.frechet_distance_from_moments(real, generated.moments), None
    logits = np.concatenate(generated.logits)
    if protocol.kind == "isucf":
        n = protocol.num_samples
        runs = [inception_score.inception_score(logits[r * n:(r + 1) * n], 1)[0] for r in range(protocol.num_runs)]
        return float(np.mean(runs)), float(np.std(runs))
    return inception_score.inception_score(logits, protocol.num_splits)


def compute_metrics(generate_fn, real_batches, metric_names, i3d=None, c3d=None, stats_cache_dir=None,
                    dataset_key=None, batch_size=8, progress=True, strategy=None):
    """Computes named metrics of a generator.

    Args:
      generate_fn: n -> n fresh generated videos [n, T, H, W, 3], uint8 or float in [-1, 1] (numpy or tf).
        Or a ``PredictedClips`` (a prediction model), scored with the prediction protocols (fvdpred_*) only: its
        continuations of real_batches' clips (their first C frames), on the host path whatever the strategy.
      real_batches: iterable of real batches (videos, or (videos, labels) as the dataset functions give, or
        {'video': ...}), uint8 or float in [-1, 1], clips of the protocol's length; read only as far as needed.
        May be None when no metric needs real data or their statistics are cached.
      metric_names: list or comma-separated string of protocol names, e.g. 'fvd2048_16f,is2048_16f'.
      i3d: an I3D handle (None = built-in Kinetics-400 I3D, a SavedModel dir, a TF-Hub URL) or a loaded
        ``classifiers.VideoClassifier``. Loaded only if a metric needs it.
      c3d: (weights_path, mean_path) of tgan2's C3D files (None = the cache dir) or a ``c3d.C3DClassifier``.
      stats_cache_dir: where real statistics are cached (None = no cache). dataset_key: a string identifying
        the real data exactly (path, config, split); statistics are cached only when it is given.
      batch_size: generated clips per generate_fn call. Over replicas: clips per replica per network call.
      progress: show a progress bar (clips) with ETA on stderr.
      strategy: None or the default strategy: the host path (generate_fn called, networks run, on the host).
        Any other tf.distribute strategy: evaluation over its replicas (see "Evaluation over replicas" above);
        generate_fn must then be a ``GeneratedClips`` and the I3D network have a ``tensor_fn``. The values do not
        depend on the replica count (but may differ from the host path's in the last digits, and draw other z).
    Returns:
      {name: value} for every metric, plus {name + '_std': std} for Inception Scores.
    Raises:
      ConfigError (unknown metric, missing dataset, incompatible network), DataError (bad videos, too little
      real data, missing C3D files).
    """
    protocols = check_model_protocols(generate_fn, metric_names)
    names = {p.network for p in protocols}
    networks = {"i3d": _resolve_i3d(i3d) if "i3d" in names else None,
                "c3d": _resolve_c3d(c3d) if "c3d" in names else None}
    _check_protocols(protocols, networks)
    cache = fvd.StatisticsCache(stats_cache_dir)
    if isinstance(generate_fn, PredictedClips):  # the host path, whatever the strategy
        total = max(p.num_generated for p in protocols)
        with ProgressBar(total, enabled=progress, unit="clip", description="eval") as bar:
            return _prediction_metrics(generate_fn, real_batches, protocols, networks, cache, dataset_key, bar)
    real = {}
    pending = []
    for p in protocols:
        if p.needs_real:
            cached = cache.load(p, networks["i3d"].identity, dataset_key)
            if cached is None:
                pending.append(p)
            else:
                real[p.name] = cached
    total_real = max((p.num_samples for p in pending), default=0)
    total_generated = max(p.num_generated for p in protocols)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"the batch size (clips per network call, per replica over replicas) must be a positive "
                          f"integer, got {batch_size!r}.")
    replicas = None
    if uses_replicas(strategy) or isinstance(generate_fn, GeneratedClips):
        if not isinstance(generate_fn, GeneratedClips):
            raise ConfigError("evaluation over replicas needs the generator as a function of the clip index "
                              "(metrics.evaluate.GeneratedClips), not a generate_fn(n).")
        replicas = _replicas_for(strategy or tf.distribute.get_strategy(), batch_size, protocols, networks)
    with ProgressBar(total_real + total_generated, enabled=progress, unit="clip", description="eval") as bar:
        if pending:
            if replicas is None:
                computed = _real_moments(real_batches, pending, networks, bar)
            else:
                computed = _real_moments_replicas(real_batches, pending, networks, bar, replicas)
            for p in pending:
                cache.save(p, networks["i3d"].identity, dataset_key, computed[p.name])
            real.update(computed)
        if replicas is None:
            generated = _generated(generate_fn, protocols, networks, batch_size, bar, total_real)
        else:
            generated = _generated_replicas(generate_fn, protocols, networks, bar, total_real, replicas)
    results = {}
    for p in protocols:
        value, std = _score(p, real.get(p.name), generated[p.name])
        results[p.name] = value
        if std is not None:
            results[p.name + "_std"] = std
    return results


def describe(metric_names, i3d_identity=None, c3d_identity=None):
    """{'protocols': {name: protocol description}, 'networks': {...}}: what to store next to the numbers."""
    protocols = protocols_lib.parse_metric_list(metric_names)
    networks = {}
    if any(p.network == "i3d" for p in protocols):
        networks["i3d"] = i3d_identity
    if any(p.network == "c3d" for p in protocols):
        networks["c3d"] = c3d_identity
    return {"protocols": {p.name: p.describe() for p in protocols}, "networks": networks}


def load_export(export_dir):
    """tf.saved_model.load of a generator export (``export.load_export``), with a clear error when it is not
    a generator export."""
    loaded = export_lib.load_export(export_dir)
    if "serving_default" not in loaded.signatures:
        raise ConfigError(f"{export_dir} has no serving_default signature; it is not a dvdgan generator export.")
    return loaded


def _metadata(loaded, name):
    value = getattr(loaded, name, None)
    return None if value is None else value.numpy().item()


def export_generate_fn(loaded, num_classes=None, truncation=0.0, seed=0, convention=truncation_lib.RESAMPLE):
    """generate_fn(n) for an exported generator: clip i's z and label are ``clip_inputs``' (a function of i and
    ``seed`` only, as over replicas), so the host path and every replica count score the same clips.

    z: ``clip_inputs``' under (convention, truncation); the truncation value is also passed to the signature,
    which takes z as given (exports older than the conventions clip it: see ``check_truncation``). Labels:
    uniform over [0, num_classes) (num_classes read from the export's metadata when not given). Returns the
    signature's float 'video' in [-1, 1].
    """
    convention, truncation = export_lib.check_truncation(loaded, convention, truncation)
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    if set(inputs) != {"z", "label", "truncation"}:
        raise ConfigError(f"the export's serving_default takes {sorted(inputs)}, expected z, label, truncation.")
    z_dim = inputs["z"].shape[-1]
    num_classes = num_classes or _metadata(loaded, "num_classes")
    if not num_classes:
        raise ConfigError("the export does not record its number of classes; pass num_classes (--num_classes).")
    clips = GeneratedClips(
        lambda z, labels: signature(z=z, label=labels, truncation=tf.constant(truncation))["video"],
        z_dim, num_classes, None, truncation, seed, convention)
    return clips.sequential(), num_classes


def export_predicted_clips(loaded, num_classes=None, truncation=0.0, seed=0, convention=truncation_lib.RESAMPLE):
    """(PredictedClips of a prediction export's ``predict`` signature, num_classes): z as ``PredictedClips``
    draws it, the truncation value passed to the signature as in ``export_generate_fn``."""
    convention, truncation = export_lib.check_truncation(loaded, convention, truncation)
    signature = loaded.signatures["predict"]
    inputs = signature.structured_input_signature[1]
    num_classes = num_classes or _metadata(loaded, "num_classes")
    clip_shape = (_metadata(loaded, "num_frames"), _metadata(loaded, "resolution"), _metadata(loaded, "resolution"),
                  3)
    clips = PredictedClips(
        lambda context, z, labels: signature(context=context, z=z, label=labels,
                                             truncation=tf.constant(truncation))["video"],
        inputs["z"].shape[-1], num_classes, export_lib.context_frames_of(loaded), clip_shape, truncation, seed,
        convention)
    return clips, num_classes


class _LazyBatches:
    """Builds the real dataset only when iterated (it is not needed when statistics are cached)."""

    def __init__(self, make, num_frames, resolution, num_classes):
        self._make, self._args = make, dict(num_frames=num_frames, resolution=resolution, num_classes=num_classes)

    def __iter__(self):
        return iter(self._make(**self._args))


def _clip_shape_error(real_shape, clip_shape):
    return DataError(f"the real clips are {real_shape[0]} frames of {real_shape[2]}x{real_shape[1]} (shape "
                     f"{list(real_shape)}) but the generator makes {clip_shape[0]} frames of "
                     f"{clip_shape[2]}x{clip_shape[1]} (shape {list(clip_shape)}): the metrics compare clips of "
                     f"one shape. Give real clips of the generator's shape (resize or cut them first), or "
                     f"evaluate a generator of the data's shape.")


class _CheckedBatches:
    """Real batches whose clips must have the generator's shape [T, H, W, 3]; checked before any clip is used
    (at once when the source knows its shape, as an .npz does, else batch by batch)."""

    def __init__(self, batches, clip_shape):
        self._batches, self._clip_shape = batches, tuple(clip_shape)
        known = getattr(batches, "clip_shape", None)
        if known is not None and tuple(known) != self._clip_shape:
            raise _clip_shape_error(tuple(known), self._clip_shape)

    def __iter__(self):
        for batch in self._batches:
            shape = tuple(_videos_of(batch).shape[1:])
            if shape != self._clip_shape:
                raise _clip_shape_error(shape, self._clip_shape)
            yield batch


def evaluate_generator(export_dir, real_batches, metric_names, num_classes=None, truncation=0.0, seed=0,
                       i3d=None, c3d=None, stats_cache_dir=None, dataset_key=None, batch_size=8, progress=True,
                       strategy=None, truncation_convention=truncation_lib.RESAMPLE):
    """Evaluates an exported generator; returns the JSON-able record (see ``compute_metrics`` for arguments).

    With a strategy (not None or the default), the export and the networks are loaded under its scope and its
    serving_default signature runs inside ``strategy.run`` on each replica (``GeneratedClips``; batch_size clips
    per replica).

    real_batches may also be a function (num_frames, resolution, num_classes) -> iterable of batches, called with
    the export's clip length, resolution and class count only if real statistics must be computed.

    Record: {'metrics': {name: value, name_std: ...}, 'protocols': {...}, 'networks': {...}, 'export_dir',
    'step' (from the export's metadata, or None), 'num_classes', 'truncation', 'truncation_convention' (z's:
    'resample' or 'scaled', see ``nets.truncation``), 'seed', 'dataset', 'replicas' (how many
    replicas ran it; the values do not depend on it), 'seconds'}.

    A prediction export (``context_frames`` > 0) is scored with the prediction protocols only (fvdpred_*: its
    continuations of the real clips' first C frames, ``PredictedClips``, on the host path whatever the strategy);
    the record adds 'context_frames'.
    """
    start = time.time()
    scope = strategy.scope if uses_replicas(strategy) else contextlib.nullcontext  # networks' variables per replica
    with scope():
        loaded = load_export(export_dir)
    truncation_convention, truncation = export_lib.check_truncation(loaded, truncation_convention, truncation)
    context_frames = export_lib.context_frames_of(loaded)
    if context_frames:  # a prediction export (DVD-GAN-FP): the prediction protocols, on the host path
        generate, num_classes = export_predicted_clips(loaded, num_classes, truncation, seed, truncation_convention)
    else:
        generate, num_classes = export_generate_fn(loaded, num_classes, truncation, seed, truncation_convention)
    protocols = protocols_lib.parse_metric_list(metric_names)
    num_frames, resolution = _metadata(loaded, "num_frames"), _metadata(loaded, "resolution")
    if num_frames is None or resolution is None:  # an export without metadata: look at one clip
        probe = export_generate_fn(loaded, num_classes, truncation, seed + 1, truncation_convention)[0](1)
        num_frames, resolution = int(probe.shape[1]), int(probe.shape[2])
    wrong = [p.name for p in protocols if p.num_frames != num_frames]
    if wrong and context_frames:
        suggested = protocols_lib.suggested_prediction_names(context_frames, num_frames)
        raise ConfigError(f"the model makes {num_frames}-frame clips from {context_frames} context frames but "
                          f"{wrong} are defined on other clip lengths; "
                          + (f"use {', '.join(suggested)}." if suggested else
                             f"no prediction FVD applies: I3D needs at least {protocols_lib.I3D_MIN_FRAMES} frames."))
    if wrong:
        suggested = protocols_lib.suggested_names(num_frames)
        fix = (f"use {', '.join(suggested)} (or the same with another sample count)" if suggested else
               f"no metric applies to {num_frames}-frame clips: the I3D metrics (FVD, FID, IS) need at least "
               f"{protocols_lib.I3D_MIN_FRAMES} frames, the C3D UCF-101 IS exactly {protocols_lib.C3D_FRAMES}")
        raise ConfigError(f"the generator makes {num_frames}-frame clips but {wrong} are defined on other clip "
                          f"lengths; {fix}.")
    clip_shape = (num_frames, resolution, resolution, 3)
    if callable(real_batches):
        real_batches = _LazyBatches(real_batches, num_frames, resolution, num_classes)
    elif real_batches is not None:
        real_batches = _CheckedBatches(real_batches, clip_shape)
    with scope():
        i3d_net = _resolve_i3d(i3d) if any(p.network == "i3d" for p in protocols) else None
        c3d_net = _resolve_c3d(c3d) if any(p.network == "c3d" for p in protocols) else None
    if uses_replicas(strategy) and not context_frames:
        signature = loaded.signatures["serving_default"]
        generate = GeneratedClips(
            lambda z, labels: signature(z=z, label=labels, truncation=tf.constant(truncation))["video"],
            signature.structured_input_signature[1]["z"].shape[-1], num_classes, clip_shape, truncation, seed,
            truncation_convention)
    values = compute_metrics(generate, real_batches, metric_names, i3d=i3d_net, c3d=c3d_net,
                             stats_cache_dir=stats_cache_dir, dataset_key=dataset_key, batch_size=batch_size,
                             progress=progress, strategy=strategy)
    record = {"metrics": values}
    record.update(describe(metric_names, i3d_net and i3d_net.identity, c3d_net and c3d_net.identity))
    record.update({"export_dir": os.path.abspath(export_dir) if files.is_local(export_dir) else export_dir, "step": _metadata(loaded, "step"),
                   "num_classes": int(num_classes), "truncation": truncation,
                   "truncation_convention": truncation_convention, "seed": seed,
                   "dataset": dataset_key, "replicas": strategy.num_replicas_in_sync if strategy else 1,
                   "seconds": round(time.time() - start, 1)})
    if context_frames:
        record["context_frames"] = context_frames
    return record


def write_json(path, record):
    """Writes a record as indented JSON, atomically (``files.write_text``)."""
    return files.write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def append_jsonl(path, record):
    """Appends a record as one JSON line (``files.append_line``)."""
    return files.append_line(path, json.dumps(record, sort_keys=True))
