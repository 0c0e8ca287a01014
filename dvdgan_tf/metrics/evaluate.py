"""Computing named metrics for a generator against real data: the one code path of training and dvdgan-eval.

``compute_metrics(generate_fn, real_batches, metric_names, ...)`` runs every requested protocol (see
``protocols``) in one pass over the real data and one over the generated clips: each network sees each clip
once, FVD / FID reduce activations to streaming moments, IS keeps only logits. ``evaluate_generator`` does the
same for an exported generator (the SavedModel users ship), and ``append_jsonl`` / ``write_json`` store records.
"""
import json
import os
import time

import numpy as np
import tensorflow as tf

from dvdgan_tf.export import saved_model as export_lib
from dvdgan_tf.errors import ConfigError, DataError
from dvdgan_tf.metrics import c3d as c3d_lib
from dvdgan_tf.metrics import classifiers, frechet, fvd, inception_score
from dvdgan_tf.metrics import protocols as protocols_lib
from dvdgan_tf.io import files
from dvdgan_tf.io.console import ProgressBar


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
        if self.protocol.kind in ("fvd", "fid"):
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
        raise ConfigError(f"{[p.name for p in protocols]} need real data and no cached statistics exist: give a "
                          f"dataset (dvdgan-eval --gin_file or --real_npz).")
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
    short = [f"{a.protocol.name} needs {a.wanted}" for a in accumulators if not a.done]
    raise DataError(f"the real data ended after {seen} clips: {'; '.join(short)}. Use a larger dataset (or the "
                    f"training split, which repeats), or a protocol with fewer samples.")


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
                    dataset_key=None, batch_size=8, progress=True):
    """Computes named metrics of a generator.

    Args:
      generate_fn: n -> n fresh generated videos [n, T, H, W, 3], uint8 or float in [-1, 1] (numpy or tf).
      real_batches: iterable of real batches (videos, or (videos, labels) as the dataset functions give, or
        {'video': ...}), uint8 or float in [-1, 1], clips of the protocol's length; read only as far as needed.
        May be None when no metric needs real data or their statistics are cached.
      metric_names: list or comma-separated string of protocol names, e.g. 'fvd2048_16f,is2048_16f'.
      i3d: an I3D handle (None = built-in Kinetics-400 I3D, a SavedModel dir, a TF-Hub URL) or a loaded
        ``classifiers.VideoClassifier``. Loaded only if a metric needs it.
      c3d: (weights_path, mean_path) of tgan2's C3D files (None = the cache dir) or a ``c3d.C3DClassifier``.
      stats_cache_dir: where real statistics are cached (None = no cache). dataset_key: a string identifying
        the real data exactly (path, config, split); statistics are cached only when it is given.
      batch_size: generated clips per generate_fn call.
      progress: show a progress bar (clips) with ETA on stderr.
    Returns:
      {name: value} for every metric, plus {name + '_std': std} for Inception Scores.
    Raises:
      ConfigError (unknown metric, missing dataset, incompatible network), DataError (bad videos, too little
      real data, missing C3D files).
    """
    protocols = protocols_lib.parse_metric_list(metric_names)
    names = {p.network for p in protocols}
    networks = {"i3d": _resolve_i3d(i3d) if "i3d" in names else None,
                "c3d": _resolve_c3d(c3d) if "c3d" in names else None}
    _check_protocols(protocols, networks)
    cache = fvd.StatisticsCache(stats_cache_dir)
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
    with ProgressBar(total_real + total_generated, enabled=progress, unit="clip", description="eval") as bar:
        if pending:
            computed = _real_moments(real_batches, pending, networks, bar)
            for p in pending:
                cache.save(p, networks["i3d"].identity, dataset_key, computed[p.name])
            real.update(computed)
        generated = _generated(generate_fn, protocols, networks, batch_size, bar, total_real)
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


def export_generate_fn(loaded, num_classes=None, truncation=0.0, seed=0):
    """generate_fn(n) for an exported generator: z and labels drawn here, reproducibly from ``seed``.

    z: N(0, I), or N(0, I) truncated to [-truncation, truncation] when truncation > 0 (also passed to the
    signature, which clips to the same range). Labels: uniform over [0, num_classes) (num_classes read from the
    export's metadata when not given). Returns the signature's float 'video' in [-1, 1].
    """
    from dvdgan_tf.nets.generator import sample_latents  # pylint: disable=import-outside-toplevel
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    if set(inputs) != {"z", "label", "truncation"}:
        raise ConfigError(f"the export's serving_default takes {sorted(inputs)}, expected z, label, truncation.")
    z_dim = inputs["z"].shape[-1]
    num_classes = num_classes or _metadata(loaded, "num_classes")
    if not num_classes:
        raise ConfigError("the export does not record its number of classes; pass num_classes (--num_classes).")
    rng = np.random.default_rng(seed)
    calls = [0]

    def generate(n):
        z = sample_latents(n, z_dim, truncation if truncation and truncation > 0 else None,
                           seed=tf.constant([seed, calls[0]], tf.int32))
        calls[0] += 1
        labels = tf.constant(rng.integers(0, num_classes, size=n), tf.int32)
        return signature(z=z, label=labels, truncation=tf.constant(float(truncation or 0.0)))["video"]

    return generate, num_classes


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
                       i3d=None, c3d=None, stats_cache_dir=None, dataset_key=None, batch_size=8, progress=True):
    """Evaluates an exported generator; returns the JSON-able record (see ``compute_metrics`` for arguments).

    real_batches may also be a function (num_frames, resolution, num_classes) -> iterable of batches, called with
    the export's clip length, resolution and class count only if real statistics must be computed.

    Record: {'metrics': {name: value, name_std: ...}, 'protocols': {...}, 'networks': {...}, 'export_dir',
    'step' (from the export's metadata, or None), 'num_classes', 'truncation', 'seed', 'dataset', 'seconds'}.
    """
    start = time.time()
    loaded = load_export(export_dir)
    generate, num_classes = export_generate_fn(loaded, num_classes, truncation, seed)
    protocols = protocols_lib.parse_metric_list(metric_names)
    num_frames, resolution = _metadata(loaded, "num_frames"), _metadata(loaded, "resolution")
    if num_frames is None or resolution is None:  # an export without metadata: look at one clip
        probe = export_generate_fn(loaded, num_classes, truncation, seed + 1)[0](1)
        num_frames, resolution = int(probe.shape[1]), int(probe.shape[2])
    wrong = [p.name for p in protocols if p.num_frames != num_frames]
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
    i3d_net = _resolve_i3d(i3d) if any(p.network == "i3d" for p in protocols) else None
    c3d_net = _resolve_c3d(c3d) if any(p.network == "c3d" for p in protocols) else None
    values = compute_metrics(generate, real_batches, metric_names, i3d=i3d_net, c3d=c3d_net,
                             stats_cache_dir=stats_cache_dir, dataset_key=dataset_key, batch_size=batch_size,
                             progress=progress)
    record = {"metrics": values}
    record.update(describe(metric_names, i3d_net and i3d_net.identity, c3d_net and c3d_net.identity))
    record.update({"export_dir": os.path.abspath(export_dir), "step": _metadata(loaded, "step"),
                   "num_classes": int(num_classes), "truncation": float(truncation or 0.0), "seed": seed,
                   "dataset": dataset_key, "seconds": round(time.time() - start, 1)})
    return record


def write_json(path, record):
    """Writes a record as indented JSON, atomically (``files.write_text``)."""
    return files.write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def append_jsonl(path, record):
    """Appends a record as one JSON line (``files.append_line``)."""
    return files.append_line(path, json.dumps(record, sort_keys=True))
