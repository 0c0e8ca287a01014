"""The (EMA) generator as a self-contained SavedModel, loading it back, and sampling from it.

An export loads with ``tf.saved_model.load(dir)`` or ``hub.load(dir)`` in a process without dvdgan_tf; it holds
no Keras objects, only variables and traced functions. Its signatures (B = batch, any size):

  serving_default(z [B, z_dim] float32, label [B] int32, truncation [] float32)
      -> video [B, T, H, W, 3] float32 in [-1, 1], video_uint8 [B, T, H, W, 3] uint8 (round((x + 1) * 127.5)),
      truncation [] float32 and truncation_convention [] string: the truncation these outputs correspond to.
      z is used as given (never clipped): draw it with the truncation you want (``latents``, or
      ``dvdgan_tf.nets.truncation.latents``) and pass that truncation value (0 or less: none). The export stores
      standing BN statistics for a list of truncation values (``standing_truncations``, metadata below; default
      0 and 1), each computed by running the generator on z of that truncation in the export's convention; a call
      uses the statistics of the stored value nearest its truncation (ties: the smaller) and returns that value
      as ``truncation``. truncation_convention is the export's (metadata, below). Exports without stored values
      (written before them, or with standing_truncations=None) use the generator's own statistics and return
      the truncation asked for.
  sample(batch_size [] int32, label [B or 1] int32, truncation [] float32, seed [] int32,
         truncation_convention [] string)
      -> the outputs of serving_default and z [B, z_dim]: z drawn by the model, identical to
      ``dvdgan_tf.nets.truncation.latents([batch_size, z_dim], [seed, 0], truncation_convention, truncation)``
      (the function the training samples, dvdgan-sample and dvdgan-eval use): truncation_convention 'resample'
      (the BigGAN paper: N(0, I) truncated to [-t, t], values beyond t redrawn) or 'scaled' (TF-Hub BigGAN:
      t * truncnorm(-2, 2)); truncation <= 0: N(0, I). A single label is used for the whole batch.
  latents(batch_size [] int32, truncation [] float32, seed [] int32, truncation_convention [] string)
      -> z [B, z_dim]: sample's z alone.

The loaded object is also callable as ``model(z, label, truncation)`` (serving_default's function, same outputs).

Prediction exports (DVD-GAN-FP: a generator with ``G.context_frames`` = C > 0) have instead the signatures
  predict(context [B, C, H, W, 3] float32 in [-1, 1], z [B, z_dim] float32, label [B] int32, truncation [] float32)
      -> video [B, T, H, W, 3] float32 in [-1, 1] (the whole clip: its first C frames are the context, copied in,
      the T - C after it predicted), video_uint8, truncation, truncation_convention: as serving_default above.
  serving_default: the same function as predict (what tools that call the default signature get).
  latents: as above (z for the predictions).
and ``model(context, z, label, truncation)``; there is no ``sample`` (a prediction needs a context). The context
is checked like z and label: "context must be shaped [batch, C, H, W, 3] (C context frames of this model at its
resolution), one clip per row of z; got shape [...]" and "context must hold finite values in [-1, 1] ...".
Standing statistics: a prediction model's statistics depend on real contexts. Given a bank of them
(``export_generator(..., contexts=)``), the export stores statistics per truncation value as above; without, it
stores one set, the statistics the generator holds when exported (G_ema's standing statistics, which the training
loop computes from real contexts before exporting), recorded as truncation 0 and used for every truncation value
(the ``truncation`` output says 0). The metadata adds ``context_frames`` (C)
and, in assets/dvdgan_export.json, ``context_frames`` and ``predicted_frames`` (T - C).

Batch 0 (z [0, z_dim] and label [0], or sample/latents with batch_size 0) is valid and returns empty outputs of
the right shape and dtype: video [0, T, H, W, 3], video_uint8 [0, T, H, W, 3], z [0, z_dim]; the generator is
not run. This lets a consumer feed the remainder of a split without a special case.

Bad inputs to a signature raise tf.errors.InvalidArgumentError whose message says what was expected: "z must be
shaped [batch, 120] ...; got shape [2 100]", "label must hold class indices in [0, 101) ...", "label must be
shaped [batch], one class index per row of z ...", "z must be finite with |z| <= 100 ...": z holding NaN or
inf, or values beyond MAX_ABS_Z = 100, is refused (z is meant to be N(0, I), where |z| > 6 has probability
below 1e-8 per entry; much larger values overflow inside the network, from about 3000 in the tests' tiny
generator, and came out as a NaN video whose uint8 form was silently all zero). Should the generator still
produce a non-finite value, the call fails with "the generator produced non-finite values" rather than returning
it. (``model(z, ...)`` with a wrong z size already fails when the call is bound, with a TypeError naming the
expected TensorSpec shape (None, z_dim).)
Metadata: ``standing_truncations`` (float32 [K], ascending: the values statistics are stored for; absent in
exports without stored values), scalar variables ``num_classes``, ``num_frames``, ``resolution``, ``z_dim`` (int32), ``step`` (int64,
-1 if unknown), ``config`` (string, the gin configuration), ``truncation_convention`` (string: the convention
serving_default's truncation refers to; exports written before it existed clip z to [-t, t] instead), and the files assets/operative_config.gin and
assets/dvdgan_export.json (the same numbers, readable without TensorFlow).
"""
import json
import os
import tempfile

import gin
import numpy as np
import tensorflow as tf

from dvdgan_tf.errors import ConfigError, DataError
from dvdgan_tf.io import files
from dvdgan_tf.nets import normalization
from dvdgan_tf.nets import truncation as truncation_lib

CONFIG_ASSET = "operative_config.gin"
METADATA_FILE = "dvdgan_export.json"
MAX_ABS_Z = 100.0  # larger |z| is refused by the signatures (see the module docstring)
CONTEXT_TOLERANCE = 1e-3  # a prediction's context may exceed [-1, 1] by this much (float rounding); it is clipped


class GeneratorExport(tf.Module):
    """The tf.Module that is saved: the generator's variables, metadata variables and the signature functions.

    The Keras generator itself is held outside tf.Module tracking (Keras 3 models cannot be saved as
    SavedModel children: saving traces their single-input default signature, which G's (z, labels) breaks).
    """

    def __init__(self, generator, step=None, config_text="", asset_paths=(),
                 truncation_convention=truncation_lib.RESAMPLE, standing=None):
        super().__init__(name="dvdgan_generator")
        context_frames = int(getattr(generator, "context_frames", 0) or 0)
        if context_frames:  # not tracked
            self._call_generator = lambda z, label, context: generator(z, label, training=False, context=context)
        else:
            self._call_generator = lambda z, label: generator(z, label, training=False)
        self.generator_variables = list(generator.variables)
        # Standing statistics per stored truncation value (see standing_statistics): values [K] ascending, and per
        # FrameBatchNorm layer (ids kept outside tracking, for normalization.given_statistics) [K, ...] stacks.
        self._standing_layers = []
        if standing is not None:
            values, per_layer = standing
            self.standing_truncations = tf.Variable(np.asarray(values, np.float32), trainable=False,
                                                    name="standing_truncations")
            self.standing_means = [tf.Variable(m, trainable=False, name="standing_mean") for _, m, _ in per_layer]
            self.standing_variances = [tf.Variable(v, trainable=False, name="standing_variance")
                                       for _, _, v in per_layer]
            self._standing_layers = [id(layer) for layer, _, _ in per_layer]
        self.num_classes = tf.Variable(generator.num_classes, dtype=tf.int32, trainable=False, name="num_classes")
        self.num_frames = tf.Variable(generator.num_frames, dtype=tf.int32, trainable=False, name="num_frames")
        self.resolution = tf.Variable(generator.resolution, dtype=tf.int32, trainable=False, name="resolution")
        self.z_dim = tf.Variable(generator.z_dim, dtype=tf.int32, trainable=False, name="z_dim")
        self.step = tf.Variable(-1 if step is None else int(step), dtype=tf.int64, trainable=False, name="step")
        self.config = tf.Variable(config_text or "", dtype=tf.string, trainable=False, name="config")
        self.truncation_convention = tf.Variable(truncation_lib.check(truncation_convention, None)[0],
                                                 dtype=tf.string, trainable=False, name="truncation_convention")
        self.assets = [tf.saved_model.Asset(p) for p in asset_paths]
        self._static = dict(num_classes=generator.num_classes, z_dim=generator.z_dim,
                            video_shape=[generator.num_frames, generator.resolution, generator.resolution, 3],
                            context_shape=[context_frames, generator.resolution, generator.resolution, 3])
        z_spec = tf.TensorSpec([None, generator.z_dim], tf.float32, name="z")
        label_spec = tf.TensorSpec([None], tf.int32, name="label")
        scalar = lambda dtype, name: tf.TensorSpec([], dtype, name=name)
        if context_frames:
            self.context_frames = tf.Variable(context_frames, dtype=tf.int32, trainable=False, name="context_frames")
            context_spec = tf.TensorSpec([None] + self._static["context_shape"], tf.float32, name="context")
            self.predict = tf.function(self._predict, input_signature=[
                context_spec, z_spec, label_spec, scalar(tf.float32, "truncation")])
            self.__call__ = self.predict
        else:
            self.__call__ = tf.function(self._serve, input_signature=[
                z_spec, label_spec, scalar(tf.float32, "truncation")])
            self.sample = tf.function(self._sample, input_signature=[
                scalar(tf.int32, "batch_size"), label_spec, scalar(tf.float32, "truncation"), scalar(tf.int32, "seed"),
                scalar(tf.string, "truncation_convention")])
        self.latents = tf.function(self._latents, input_signature=[
            scalar(tf.int32, "batch_size"), scalar(tf.float32, "truncation"), scalar(tf.int32, "seed"),
            scalar(tf.string, "truncation_convention")])

    def signatures(self):
        """{signature key: concrete function} for tf.saved_model.save."""
        if self._static["context_shape"][0]:
            predict = self.predict.get_concrete_function()
            return {"serving_default": predict, "predict": predict, "latents": self.latents.get_concrete_function()}
        return {"serving_default": self.__call__.get_concrete_function(),
                "sample": self.sample.get_concrete_function(), "latents": self.latents.get_concrete_function()}

    def _check_inputs(self, z, label):
        num_classes, z_dim = self._static["num_classes"], self._static["z_dim"]
        message = f"label must hold class indices in [0, {num_classes}) (this generator has {num_classes} classes)"
        z_shape = tf.shape(z)
        return [
            tf.debugging.Assert(tf.logical_and(tf.size(z_shape) == 2, z_shape[-1] == z_dim), [
                f"z must be shaped [batch, {z_dim}] (z_dim of this generator); got shape", z_shape]),
            tf.debugging.Assert(tf.logical_and(tf.rank(label) == 1, tf.size(label) == z_shape[0]), [
                "label must be shaped [batch], one class index per row of z; got label shape", tf.shape(label),
                "and z shape", z_shape]),
            tf.debugging.assert_greater_equal(label, 0, message=message),
            tf.debugging.assert_less(label, num_classes, message=message),
            tf.debugging.Assert(tf.reduce_all(tf.abs(z) <= MAX_ABS_Z), [
                f"z must be finite with |z| <= {MAX_ABS_Z:g} (z is meant to be N(0, I)); got NaN/inf or a larger "
                f"value: max |z| =", tf.reduce_max(tf.abs(z))])]  # NaN <= x is false, so NaN fails too

    def _standing_choice(self, truncation):
        """(stored truncation value nearest ``truncation`` (ties: the smaller), {id(BN layer): (mean, variance)}
        stored for it), or (truncation, None) for an export without stored values."""
        if not self._standing_layers:
            return tf.identity(truncation), None
        values = self.standing_truncations  # ascending: argmin's first minimum is the smaller value on a tie
        with tf.control_dependencies([tf.debugging.Assert(tf.math.is_finite(truncation), [
                "truncation must be a finite number; got", truncation])]):
            index = tf.argmin(tf.abs(values - tf.maximum(truncation, 0.0)), output_type=tf.int32)
        statistics = {layer: (tf.gather(mean, index), tf.gather(variance, index)) for layer, mean, variance in
                      zip(self._standing_layers, self.standing_means, self.standing_variances)}
        return tf.gather(values, index), statistics

    def _check_context(self, context, z):
        """Checks of a prediction's context: its shape (the model's C frames at its resolution, one clip per row
        of z) and values (finite, in [-1, 1])."""
        expected = self._static["context_shape"]
        shape = tf.shape(context)
        padded = tf.concat([shape, tf.zeros([5], tf.int32)], axis=0)[:5]  # comparable whatever the rank
        shape_ok = tf.logical_and(tf.size(shape) == 5, tf.reduce_all(padded[1:] == expected))
        shaped = (f"context must be shaped [batch, {', '.join(str(d) for d in expected)}] ({expected[0]} context "
                  f"frames of this model at its resolution {expected[1]}x{expected[2]}, RGB), one clip per row of "
                  f"z; got shape")
        shape_check = tf.debugging.Assert(shape_ok, [shaped, shape], summarize=8)
        with tf.control_dependencies([shape_check]):
            batch_check = tf.debugging.Assert(padded[0] == tf.shape(z)[0], [
                "context must have one clip per row of z; got", padded[0], "clips and z rows:", tf.shape(z)[0]])
            low, high = tf.reduce_min(context), tf.reduce_max(context)  # NaN compares false, so NaN fails too
            range_check = tf.debugging.Assert(tf.logical_or(tf.size(context) == 0, tf.logical_and(
                low >= -1.0 - CONTEXT_TOLERANCE, high <= 1.0 + CONTEXT_TOLERANCE)), [
                    "context must hold finite values in [-1, 1] (uint8 frames x map to x / 127.5 - 1); got min",
                    low, "max", high])
        return [shape_check, batch_check, range_check]

    def _predict(self, context, z, label, truncation):
        with tf.control_dependencies(self._check_context(context, z)):
            context = tf.identity(context)
        return self._serve(z, label, truncation, context)

    def _serve(self, z, label, truncation, context=None):
        used, statistics = self._standing_choice(truncation)

        def run_generator():
            with normalization.given_statistics(statistics):
                if context is None:
                    return tf.cast(self._call_generator(z, label), tf.float32)
                return tf.cast(self._call_generator(z, label, tf.clip_by_value(context, -1.0, 1.0)), tf.float32)

        with tf.control_dependencies(self._check_inputs(z, label)):
            empty = tf.zeros([0] + self._static["video_shape"], tf.float32)
            video = tf.cond(tf.shape(z)[0] > 0, run_generator, lambda: empty)
        with tf.control_dependencies([tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(video)), [
                "the generator produced non-finite values (NaN or inf) for these inputs; it returns no video "
                "rather than a wrong one"])]):
            video = tf.identity(video)
        uint8 = tf.cast(tf.round(tf.clip_by_value((video + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)
        # The truncation these outputs correspond to: the stored value whose standing statistics were used.
        return {"video": video, "video_uint8": uint8, "truncation": used,
                "truncation_convention": tf.identity(self.truncation_convention)}

    def _latents(self, batch_size, truncation, seed, truncation_convention):
        with tf.control_dependencies([tf.debugging.assert_non_negative(batch_size, message=(
                "batch_size must be >= 0"))]):
            shape = tf.stack([batch_size, self._static["z_dim"]])
        return {"z": truncation_lib.latents(shape, tf.stack([seed, 0]), truncation_convention, truncation)}

    def _sample(self, batch_size, label, truncation, seed, truncation_convention):
        z = self._latents(batch_size, truncation, seed, truncation_convention)["z"]
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.logical_or(tf.size(label) == 1, tf.size(label) == batch_size), True,
                message="label must have 1 entry (one class for the whole batch) or batch_size entries")]):
            label = tf.broadcast_to(label, [batch_size])
        outputs = self.__call__(z, label, truncation)
        outputs["z"] = z
        return outputs


DEFAULT_STANDING_TRUNCATIONS = (0.0, 1.0)


def standing_statistics(generator, truncations, convention, seed=0, step=0, strategy=None, contexts=None):
    """Standing BN statistics of ``generator`` at each truncation value (``standing_stats.recompute`` with that
    truncation and ``convention``, keyed by seed and step), its variables restored afterwards (BN statistics and
    SN vectors: a training run's G_ema keeps the statistics it had).

    Returns (values, [(layer, means [K, ...], variances [K, ...]) per FrameBatchNorm]): values the distinct
    truncations ascending (<= 0 counts as 0, no truncation), K of them. contexts: a prediction model's bank of
    real contexts and labels (``standing_stats.recompute``'s contexts), passed on when given."""
    from dvdgan_tf.nets import standing_stats  # pylint: disable=import-outside-toplevel
    values = sorted({max(truncation_lib.check(convention, t)[1], 0.0) for t in truncations})
    if not values:
        raise ConfigError("export_generator.standing_truncations is empty: give at least one truncation value "
                          "(e.g. (0.0, 1.0); 0: no truncation), or None for no stored statistics.")
    layers = standing_stats.batch_norm_layers(generator)
    held = [v for layer in layers for v in (layer.moving_mean, layer.moving_variance)]
    held += [layer.sn_u for layer in standing_stats.spectral_norm_layers(generator)]
    saved = [v.numpy() for v in held]
    try:
        extra = {} if contexts is None else {"contexts": contexts}
        results = [standing_stats.recompute(generator, strategy, seed=seed, step=step, truncation=t,
                                            convention=convention, **extra) for t in values]
    finally:
        for variable, value in zip(held, saved):
            variable.assign(value)
    return values, [(layer, np.stack([r[layer][0] for r in results]), np.stack([r[layer][1] for r in results]))
                    for layer in layers]


def held_statistics(generator):
    """The BN statistics ``generator`` holds now, in ``standing_statistics``' form, as the one value 0: what a
    prediction model's export stores (its standing statistics need real contexts, computed before the export by
    the training loop or dvdgan-export; see the module docstring)."""
    from dvdgan_tf.nets import standing_stats  # pylint: disable=import-outside-toplevel
    return [0.0], [(layer, layer.moving_mean.numpy()[None], layer.moving_variance.numpy()[None])
                   for layer in standing_stats.batch_norm_layers(generator)]


@gin.configurable("export_generator", allowlist=["standing_truncations"])
def export_generator(generator, export_dir, step=None, config_text=None, truncation_convention=None,
                     standing_truncations=DEFAULT_STANDING_TRUNCATIONS, seed=0, strategy=None, contexts=None):
    """Writes ``generator`` as a SavedModel to ``export_dir`` (see the module docstring for its signatures).

    Args:
      generator: a built dvdgan_tf Generator (the EMA one for shipping). export_dir: final folder; an existing
        export there is replaced. step: training step stored as metadata. config_text: the gin configuration
        stored as metadata and assets/operative_config.gin (default: the current gin config).
      truncation_convention: 'resample' or 'scaled', recorded as the convention serving_default's truncation refers
        to (default: gin ``truncation.convention``, itself 'resample' by default).
      standing_truncations: (gin) truncation values (0: none) for which standing statistics are computed
        (``standing_statistics``, under truncation_convention) and stored; each signature call uses those of the
        value nearest its truncation and returns that value. None: store none (the generator's own statistics
        serve every truncation, as in exports written before this). A prediction model (context_frames > 0)
        needs real contexts for them: given ``contexts``, they are computed per value as for synthesis; without,
        it stores (unless None) only the statistics it holds now, as value 0 (``held_statistics``).
      seed, strategy: key the standing-statistics draws (with step; the training run's seed, so that the value 0
        reproduces the run's own G_ema statistics) and the strategy the generator's variables live under.
      contexts: a prediction model only: (contexts [N, C, H, W, 3] float32 in [-1, 1], labels [N] int32), the bank
        of real contexts its standing statistics are computed from (``standing_stats.recompute``).
    Returns:
      export_dir. Written to a temporary sibling folder and renamed into place, so export_dir never holds a
      partial export, even after a crash. The generator's variables are left as they were.
    """
    config_text = gin.config_str() if config_text is None else config_text
    if truncation_convention is None:
        truncation_convention = truncation_lib.sample_grid_truncation()[0]
    truncation_convention = truncation_lib.check(truncation_convention, None)[0]
    if files.is_local(export_dir):
        export_dir = os.path.abspath(export_dir)
    if tf.io.gfile.isdir(export_dir) and tf.io.gfile.listdir(export_dir) and not _is_saved_model(export_dir):
        raise ConfigError(f"{export_dir} exists and is not a SavedModel export: refusing to replace it. Choose "
                          f"a new or empty folder.")
    if standing_truncations is None:
        standing = None
    elif getattr(generator, "context_frames", 0) and contexts is None:
        standing = held_statistics(generator)
    else:
        standing = standing_statistics(generator, standing_truncations, truncation_convention, seed,
                                       0 if step is None else step, strategy, contexts)
    needed = sum(int(tf.size(v)) * tf.as_dtype(v.dtype).size for v in generator.variables)
    if standing is not None:
        needed += sum(m.nbytes + v.nbytes for _, m, v in standing[1])
    with files.publish_dir(export_dir, needed_bytes=needed) as tmp, tempfile.TemporaryDirectory() as assets:
        module = GeneratorExport(generator, step, config_text,
                                 _write_assets(assets, generator, step, config_text, truncation_convention,
                                               None if standing is None else standing[0]),
                                 truncation_convention, standing)
        tf.saved_model.save(module, tmp, signatures=module.signatures())
    return export_dir


def _write_assets(folder, generator, step, config_text, truncation_convention, standing_truncations=None):
    config_path, metadata_path = os.path.join(folder, CONFIG_ASSET), os.path.join(folder, METADATA_FILE)
    files.write_text(config_path, config_text)
    metadata = {"num_classes": generator.num_classes, "num_frames": generator.num_frames,
                "resolution": generator.resolution, "z_dim": generator.z_dim, "step": step,
                "value_range": [-1.0, 1.0], "layout": "[batch, frames, height, width, RGB]",
                "truncation_convention": truncation_convention, "standing_truncations": standing_truncations}
    context_frames = int(getattr(generator, "context_frames", 0) or 0)
    if context_frames:  # prediction exports only: a synthesis export's assets stay as they were
        metadata.update({"context_frames": context_frames,
                         "predicted_frames": generator.num_frames - context_frames,
                         "signature": "predict(context, z, label, truncation)"})
    files.write_text(metadata_path, json.dumps(metadata, indent=2))
    return [config_path, metadata_path]


def _is_saved_model(folder):
    return tf.io.gfile.exists(files.join(folder, "saved_model.pb"))


def load_export(export_dir):
    """tf.saved_model.load of an export, with a DataError when ``export_dir`` holds no SavedModel or a damaged
    one (unparsable saved_model.pb, missing or unreadable variables)."""
    if not _is_saved_model(export_dir):
        raise DataError(f"{export_dir} is not a SavedModel export (no saved_model.pb): give a folder written by "
                        f"dvdgan-export or a training run's model_dir/export/<step>/.")
    from google.protobuf.message import DecodeError  # pylint: disable=import-outside-toplevel
    try:
        return tf.saved_model.load(export_dir)
    except (DecodeError, tf.errors.OpError, ValueError, OSError, KeyError, RuntimeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DataError(f"{export_dir} holds a damaged SavedModel that cannot be loaded ({type(e).__name__}: "
                        f"{reason}): export it again (dvdgan-export --model_dir=<run> --out={export_dir}).") from e


def check_truncation(model, convention, truncation):
    """(convention, t) checked (``truncation.check``) for a loaded export. Exports written before the truncation
    conventions existed clip z to [-t, t] in serving_default: harmless for 'resample' z (already inside), wrong
    for 'scaled' z (up to 2t), which is refused for them with a ConfigError."""
    convention, t = truncation_lib.check(convention, truncation)
    if t > 0 and convention != truncation_lib.RESAMPLE and getattr(model, "truncation_convention", None) is None:
        raise ConfigError(f"this export predates truncation conventions and clips z to [-t, t], which would "
                          f"distort '{convention}' z: export it again with this version (dvdgan-export), or use "
                          f"the 'resample' convention.")
    return convention, t


def sample_videos(model, label, num, truncation=0.0, seed=0, batch_size=8, on_progress=None,
                  convention=truncation_lib.RESAMPLE):
    """``num`` videos of class ``label`` from a loaded export (see load_export), using only its signatures.

    z comes from the export's ``latents`` signature (all num rows at once, so the result does not depend on
    batch_size), then ``serving_default`` runs in batches of ``batch_size``.
    Args:
      truncation, convention: 0 / None: z ~ N(0, I); t > 0: z drawn by ``truncation.latents`` under convention
        'resample' (N(0, I) truncated to [-t, t]) or 'scaled' (t * truncnorm(-2, 2)).
      seed: int, fixes z. on_progress: optional callable(done, num) after each batch.
    Returns:
      uint8 NumPy array [num, T, H, W, 3].
    """
    if context_frames_of(model):
        raise ConfigError(f"this export predicts from {context_frames_of(model)} context frames: sample it with "
                          f"predict_videos (dvdgan-sample --context=clip.mp4), not sample_videos.")
    truncation, z = _checked_latents(model, label, num, truncation, seed, batch_size, convention)
    videos = []
    for start in range(0, num, batch_size):
        z_batch = z[start:start + batch_size]
        labels = tf.fill([tf.shape(z_batch)[0]], tf.constant(label, tf.int32))
        videos.append(model.signatures["serving_default"](z=z_batch, label=labels,
                                                          truncation=truncation)["video_uint8"].numpy())
        if on_progress:
            on_progress(start + len(videos[-1]), num)
    return np.concatenate(videos)


def context_frames_of(model):
    """C of a loaded export: its ``context_frames`` metadata (prediction exports), 0 for synthesis exports."""
    value = getattr(model, "context_frames", None)
    return 0 if value is None else int(value.numpy())


def _checked_latents(model, label, num, truncation, seed, batch_size, convention):
    """(truncation tensor, z [num, z_dim] from the export's ``latents`` signature) after checking the arguments."""
    num_classes = int(model.num_classes.numpy())
    if not 0 <= label < num_classes:
        raise ConfigError(f"label {label} is outside the class range [0, {num_classes}) of this export.")
    if num < 1 or batch_size < 1:
        raise ConfigError(f"the number of samples and the batch size must be >= 1, got {num} and {batch_size}.")
    convention, truncation = check_truncation(model, convention, truncation)
    truncation = tf.constant(truncation, tf.float32)
    latents = model.signatures["latents"]
    args = dict(batch_size=tf.constant(num, tf.int32), truncation=truncation, seed=tf.constant(seed, tf.int32))
    if "truncation_convention" in latents.structured_input_signature[1]:  # else an older export: 'resample'
        args["truncation_convention"] = tf.constant(convention)
    return truncation, latents(**args)["z"]


def predict_videos(model, context, label, num, truncation=0.0, seed=0, batch_size=8, on_progress=None,
                   convention=truncation_lib.RESAMPLE):
    """``num`` predictions of one clip's continuation from a loaded prediction export, using only its signatures.

    Args:
      context: [C, H, W, 3] (or [1, C, H, W, 3]) float in [-1, 1]: the clip's first C frames at the model's
        resolution. label, truncation, seed, convention, batch_size, on_progress: as ``sample_videos`` (z from
        the ``latents`` signature, all num rows at once, so the result does not depend on batch_size).
    Returns:
      uint8 NumPy array [num, T, H, W, 3]: the whole clips, their first C frames the context.
    """
    context_frames = context_frames_of(model)
    if not context_frames:
        raise ConfigError("this export is a synthesis model (no context frames): sample it with sample_videos "
                          "(dvdgan-sample without --context).")
    context = np.asarray(context, np.float32)
    context = context[0] if context.ndim == 5 and context.shape[0] == 1 else context
    truncation, z = _checked_latents(model, label, num, truncation, seed, batch_size, convention)
    predict = model.signatures["predict"]
    videos = []
    for start in range(0, num, batch_size):
        z_batch = z[start:start + batch_size]
        n = int(z_batch.shape[0])
        contexts = tf.constant(np.repeat(context[None], n, axis=0))
        labels = tf.fill([n], tf.constant(label, tf.int32))
        videos.append(predict(context=contexts, z=z_batch, label=labels, truncation=truncation)["video_uint8"].numpy())
        if on_progress:
            on_progress(start + n, num)
    return np.concatenate(videos)
