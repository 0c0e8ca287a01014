"""What a training run shows and ships from its EMA generator: GIF sample grids, class accuracy, the named
evaluation metrics (FVD, FID, IS), SavedModels."""
import contextlib
import inspect

import gin
import numpy as np
import tensorflow as tf

from dvdgan_tf.export import saved_model as export
from dvdgan_tf.io import video as video_io
from dvdgan_tf.nets import truncation as truncation_lib
from dvdgan_tf.nets.generator import sample_latents
from dvdgan_tf.errors import ConfigError
from dvdgan_tf.metrics import centroid, class_accuracy, classifiers, evaluate, real_data
from dvdgan_tf.io import files
from dvdgan_tf.io.console import log
from dvdgan_tf.training.run_dir import EXPORT_DIR, METRICS_FILE, STATS_DIR



class SampleWriter:
    """Writes the EMA generator's samples (fixed z, one row per class) to TensorBoard and exports it.

    Args:
      generator: the (EMA) Generator. model_dir: the run directory.
      samples_per_class: columns of the grid. max_classes: rows (the first classes). seed: fixes z.
      truncation_convention, truncation: z's truncation (``nets.truncation``; default: gin
        ``truncation.convention`` and ``truncation.value``, i.e. 'resample' and 0, no truncation). Exports record
        the convention; serving_default(z, labels, truncation) of an export gives videos() for this z.
      real_clips: required for a frame-conditional generator (G.context_frames = C > 0): (videos [N, T, H, W, 3],
        labels [N]) of held-out real clips (``first_batch``). The grid then has three rows of
        samples_per_class * min(max_classes, num_classes) clips (at most N): context (the C context frames, the last one held
        for the rest of the clip) | prediction (G's whole output: the context, then its continuation) | truth
        (the real clip).
    """

    def __init__(self, generator, model_dir, samples_per_class, max_classes, seed, truncation_convention=None,
                 truncation=None, strategy=None, real_clips=None):
        self.generator, self.model_dir, self.seed, self.strategy = generator, model_dir, seed, strategy
        self.rows = min(max_classes, generator.num_classes)
        self.labels = tf.constant(np.repeat(np.arange(self.rows, dtype=np.int32), samples_per_class))
        self.context_frames = getattr(generator, "context_frames", 0)
        if self.context_frames:
            if real_clips is None:
                raise ValueError("SampleWriter: a frame-conditional generator needs real_clips.")
            count = min(samples_per_class * self.rows, len(real_clips[0]))
            self.truth = tf.constant(np.asarray(real_clips[0][:count], np.float32))
            self.labels = tf.constant(np.asarray(real_clips[1][:count], np.int32))
        gin_convention, gin_value = truncation_lib.sample_grid_truncation()
        self.truncation_convention, self.truncation = truncation_lib.check(
            truncation_convention or gin_convention, gin_value if truncation is None else truncation)
        self.z = sample_latents(len(self.labels), generator.z_dim, self.truncation, seed=tf.constant([seed, 4242]),
                                convention=self.truncation_convention)

    def videos(self):
        """[rows * samples_per_class, T, H, W, 3] float32 in [-1, 1], row-major by class (frame-conditional:
        the predictions of the real clips' contexts, in their order)."""
        if self.context_frames:
            return self.generator(self.z, self.labels, training=False,
                                  context=self.truth[:, :self.context_frames])
        return self.generator(self.z, self.labels, training=False)

    def grid_videos(self):
        """The clips of the GIF grid in row-major order and its row count."""
        if self.context_frames:
            return prediction_rows(self.videos(), self.truth, self.context_frames), 3
        return self.videos(), self.rows

    def write(self, step):
        """An animated GIF grid (one row per class; frame-conditional: context | prediction | truth rows) under
        the tag ``samples/ema``."""
        videos, rows = self.grid_videos()
        video_io.gif_summary("samples/ema", videos, step, rows=rows)

    def export(self, step):
        """The generator as a SavedModel in model_dir/export/<step>/, with standing statistics for the truncation
        values of gin ``export_generator.standing_truncations`` (keyed by the run's seed and the step, so value 0
        gives the statistics G_ema has now); returns that path. The generator's variables are left as they were."""
        path = files.join(self.model_dir, EXPORT_DIR, str(step))
        export.export_generator(self.generator, path, step=step, config_text=gin.config_str(),
                                truncation_convention=self.truncation_convention, seed=self.seed,
                                strategy=self.strategy)
        return path


def prediction_rows(predicted, truth, context_frames):
    """The clips of a context | prediction | truth grid, row-major: [3N, T, H, W, 3] from predictions and real
    clips [N, T, H, W, 3]; the context row shows the C context frames, then holds the last one."""
    truth = np.asarray(truth, np.float32)
    held = np.repeat(truth[:, context_frames - 1:context_frames], truth.shape[1] - context_frames, axis=1)
    context_row = np.concatenate([truth[:, :context_frames], held], axis=1)
    return np.concatenate([context_row, np.asarray(predicted, np.float32), truth], axis=0)


def first_batch(dataset_fn, generator, batch_size, seed, training=False, **kwargs):
    """The first batch of the run's data (held-out data unless ``training``) as NumPy arrays (a tuple)."""
    g = generator
    dataset = dataset_fn(batch_size=batch_size, num_frames=g.num_frames, resolution=g.resolution,
                         num_classes=g.num_classes, training=training, seed=seed, **kwargs)
    for batch in dataset.take(1):
        return tuple(np.asarray(x) for x in batch)
    raise ConfigError(f"the dataset has fewer than {batch_size} {'training' if training else 'held-out'} clips: "
                      f"lower the number of clips asked for.")


@gin.configurable("prediction_centroid")
def centroid_settings(every=0, num_clips=64):
    """(gin ``prediction_centroid.every``, ``.num_clips``) the centroid evidence of a frame-conditional model
    on moving shapes (``PredictionCentroidMonitor``): its interval in steps (0 = never) and held-out clips."""
    return every, num_clips


class PredictionCentroidMonitor:
    """Frame-conditional models on moving shapes: the mean distance between the predicted object's centroid
    and the true continuation's, per predicted frame, against the repeat-the-last-context-frame baseline
    (``metrics.centroid``), on ``num_clips`` held-out clips (the dataset's evaluation clips, fixed z from the
    seed). Written to TensorBoard (eval/centroid_error, eval/centroid_error_baseline, eval/centroid_error_ratio,
    in pixels) and metrics.jsonl (with the per-frame values)."""

    def __init__(self, generator, dataset_fn, model_dir, num_clips, seed):
        if not getattr(generator, "context_frames", 0):
            raise ConfigError("prediction_centroid.every > 0 needs a frame-conditional model (G.context_frames "
                              "> 0): set prediction_centroid.every = 0.")
        if "with_centres" not in inspect.signature(dataset_fn).parameters:
            raise ConfigError("prediction_centroid.every > 0 needs the moving shapes (train.dataset_fn = "
                              "@moving_shapes), whose renderer knows the true positions: set "
                              "prediction_centroid.every = 0 for other data.")
        self.generator, self.model_dir = generator, model_dir
        self.videos, self.labels, self.centres = first_batch(dataset_fn, generator, num_clips, seed,
                                                             with_centres=True)
        self.z = sample_latents(num_clips, generator.z_dim, seed=tf.constant([seed, 4343]))
        self.last = None

    def measure(self, step):
        """Returns ``centroid.prediction_errors`` of the generator's predictions now, and records them."""
        g, c = self.generator, self.generator.context_frames
        predicted = g(self.z, tf.constant(self.labels), training=False, context=tf.constant(self.videos[:, :c]))
        errors = centroid.prediction_errors(predicted.numpy(), self.centres, c)
        tf.summary.scalar("eval/centroid_error", errors["mean"], step=step)
        tf.summary.scalar("eval/centroid_error_baseline", errors["baseline_mean"], step=step)
        tf.summary.scalar("eval/centroid_error_ratio", errors["ratio"], step=step)
        evaluate.append_jsonl(files.join(self.model_dir, METRICS_FILE),
                              {"step": step, "metric": "centroid_error", "value": errors["mean"],
                               "baseline": errors["baseline_mean"], "ratio": errors["ratio"],
                               "per_frame": errors["per_frame"], "baseline_per_frame": errors["baseline_per_frame"],
                               "unit": "pixels", "clips": len(self.videos)})
        log(f"step {step}: predicted-centroid error {errors['mean']:.2f} px, repeat-last-frame baseline "
            f"{errors['baseline_mean']:.2f} px (ratio {errors['ratio']:.2f}); per predicted frame: "
            + ", ".join(f"{e:.2f}/{b:.2f}" for e, b in zip(errors["per_frame"], errors["baseline_per_frame"])))
        self.last = errors
        return errors


GREY_STEPS_FACTOR = 3  # training steps of the colour-blind classifier, in units of the colour one's


class ClassAccuracyMonitor:
    """Trains two small classifiers on the run's real data once, one on colour clips and one on grey-scale clips
    (colour-blind: shape and motion only), then measures the class accuracy of the EMA generator's samples with
    each and their first-frame brightness ratio against the real clips' (``metrics.class_accuracy``), into
    TensorBoard (eval/class_accuracy, eval/colour_blind_class_accuracy, eval/first_frame_ratio and
    eval/first_frame_ratio_real) and metrics.jsonl."""

    def __init__(self, generator, dataset_fn, model_dir, classifier_steps, samples_per_class, seed):
        if getattr(generator, "context_frames", 0):
            raise ConfigError("train.class_accuracy_every > 0 measures class-conditional synthesis; a prediction "
                              "model (G.context_frames > 0) is measured by prediction_centroid (moving shapes) "
                              "or the fvdpred_* metrics: set train.class_accuracy_every = 0.")
        self.generator, self.model_dir, self.samples_per_class, self.seed = (
            generator, model_dir, samples_per_class, seed)
        shape = (generator.num_frames, generator.resolution, generator.num_classes)
        self.classifier, real_accuracy = class_accuracy.train_classifier(
            dataset_fn, *shape, steps=classifier_steps, seed=seed)
        # Without colour the classes must be told apart by shape and motion, which this small net learns more
        # slowly: 3x the steps (on the demo's data, 200 steps gave 0.80-0.93 on held-out real clips, 600 gave
        # 0.996-0.999 for seeds 0, 1, 2).
        self.grey_classifier, real_grey_accuracy = class_accuracy.train_classifier(
            dataset_fn, *shape, steps=GREY_STEPS_FACTOR * classifier_steps, seed=seed, colour=False)
        self.real_first_frame_ratio = class_accuracy.real_first_frame_ratio(dataset_fn, *shape, seed=seed)
        log(f"class-accuracy classifiers on held-out real clips: {real_accuracy:.3f} in colour, "
            f"{real_grey_accuracy:.3f} colour-blind (chance {1 / generator.num_classes:.3f}); real clips' "
            f"first-frame brightness ratio {self.real_first_frame_ratio:.3f}")

    def measure(self, step):
        """Returns {'class_accuracy', 'colour_blind_class_accuracy' (in [0, 1]), 'first_frame_ratio',
        'first_frame_ratio_real'} at ``step`` and records them."""
        g = self.generator
        videos, labels = class_accuracy.generated_samples(g, g.num_classes, self.samples_per_class, self.seed)
        values = {"class_accuracy": class_accuracy.accuracy_on(self.classifier, videos, labels),
                  "colour_blind_class_accuracy": class_accuracy.accuracy_on(self.grey_classifier, videos, labels,
                                                                           colour=False),
                  "first_frame_ratio": class_accuracy.first_frame_ratio(videos),
                  "first_frame_ratio_real": self.real_first_frame_ratio}
        for name, value in values.items():
            tf.summary.scalar(f"eval/{name}", value, step=step)
        path = files.join(self.model_dir, METRICS_FILE)
        for name in ("class_accuracy", "colour_blind_class_accuracy"):
            evaluate.append_jsonl(path, {"step": step, "metric": name, "value": values[name],
                                         "chance": 1 / g.num_classes})
        evaluate.append_jsonl(path, {"step": step, "metric": "first_frame_ratio", "value": values["first_frame_ratio"],
                                     "real": self.real_first_frame_ratio})
        log(f"step {step}: EMA-generator class accuracy {values['class_accuracy']:.3f}, colour-blind "
            f"{values['colour_blind_class_accuracy']:.3f}; first-frame brightness ratio "
            f"{values['first_frame_ratio']:.3f} (real clips {self.real_first_frame_ratio:.3f})")
        return values



class MetricsMonitor:
    """Runs the named metrics (``metrics.protocols``, e.g. 'fvd2048_16f') on the EMA generator with the same
    code as dvdgan-eval, into TensorBoard (eval/<name>) and metrics.jsonl.

    Real clips come from the run's dataset function in evaluation mode; their statistics are cached in
    model_dir/stats under the protocol, the network and ``real_data.config_dataset_key`` (the run's fully
    resolved configuration and, for prepared data, the data folder's absolute path and dataset.json content,
    looked at again at every evaluation; the same key function as dvdgan-eval). Generated clips use fixed z and
    uniform labels drawn from ``seed``, the same at every evaluation.

    strategy: the training loop's. Under one with replicas (not None or the default), generation and I3D run on
    every replica (``evaluate.GeneratedClips``; batch_size clips per replica) and the values do not depend on
    the replica count. i3d_handle may also be a loaded ``classifiers.VideoClassifier``.
    A prediction model (G.context_frames > 0) is scored with the prediction protocols (e.g. 'fvdpred_bair'):
    its continuations of the evaluation clips' context frames against those clips (``evaluate.PredictedClips``,
    on the host).
    live_generator: if given (the live G, in inference mode with its own statistics), the same metrics of the
    same clips are also computed for it, as eval_live/<name> and "live_values", to compare what the run ships
    (the EMA generator) with what it trains.
    """

    def __init__(self, generator, dataset_fn, model_dir, metric_names, config_text, seed, batch_size=8,
                 i3d_handle=None, strategy=None, live_generator=None):
        self.generator, self.dataset_fn, self.model_dir = generator, dataset_fn, model_dir
        self.metric_names, self.seed, self.batch_size = metric_names, seed, batch_size
        self.strategy = strategy if evaluate.uses_replicas(strategy) else None
        needs_i3d = "i3d" in evaluate.describe(metric_names)["networks"]
        self.i3d = None
        if needs_i3d:
            with self.strategy.scope() if self.strategy else contextlib.nullcontext():  # I3D's variables per replica
                self.i3d = (i3d_handle if isinstance(i3d_handle, classifiers.VideoClassifier)
                            else classifiers.load_i3d(i3d_handle))
        self.config_text = config_text
        self.stats_dir = files.join(model_dir, STATS_DIR)  # the real statistics' cache (set by multi-worker runs)
        # Clip i's z and label depend on i and the seed only, whichever replica (or the host) makes it.
        self.clips = None if generator is None else self._clips(generator, seed)  # None: dataset_key() only
        self.live_clips = None if live_generator is None else self._clips(live_generator, seed)
        if self.clips is not None:  # a protocol that does not fit the model: at start-up, not at the first measure
            evaluate.check_model_protocols(self.clips, metric_names)

    @staticmethod
    def _clips(g, seed):
        shape = (g.num_frames, g.resolution, g.resolution, 3)
        if getattr(g, "context_frames", 0):  # a prediction model: the prediction protocols (fvdpred_*)
            return evaluate.PredictedClips(lambda context, z, labels: g(z, labels, training=False, context=context),
                                           g.z_dim, g.num_classes, g.context_frames, shape, seed=seed)
        return evaluate.GeneratedClips(lambda z, labels: g(z, labels, training=False), g.z_dim, g.num_classes,
                                       shape, seed=seed)

    def dataset_key(self):
        """The real-statistics key of the run's evaluation data now (see the class docstring)."""
        return real_data.config_dataset_key(self.config_text, self.dataset_fn, training=False, seed=self.seed)

    def _compute(self, clips):
        g = self.generator
        real = self.dataset_fn(batch_size=self.batch_size, num_frames=g.num_frames, resolution=g.resolution,
                               num_classes=g.num_classes, training=False, seed=self.seed)
        generate = clips if self.strategy or isinstance(clips, evaluate.PredictedClips) else clips.sequential()
        return evaluate.compute_metrics(generate, real, self.metric_names,
                                        i3d=self.i3d, stats_cache_dir=self.stats_dir,
                                        dataset_key=self.dataset_key(), batch_size=self.batch_size,
                                        strategy=self.strategy)

    def measure(self, step):
        """Computes every metric at ``step`` (and of the live G, when given); returns {name: value} of the EMA
        generator."""
        values = self._compute(self.clips)
        record = {"step": step, "values": values,
                  **evaluate.describe(self.metric_names, self.i3d.identity if self.i3d else None)}
        for name, value in values.items():
            tf.summary.scalar(f"eval/{name}", value, step=step)
        message = f"step {step}: " + ", ".join(f"{k} = {v:.4g}" for k, v in values.items())
        if self.live_clips is not None:
            record["live_values"] = live = self._compute(self.live_clips)
            for name, value in live.items():
                tf.summary.scalar(f"eval_live/{name}", value, step=step)
            message += "; live G: " + ", ".join(f"{k} = {v:.4g}" for k, v in live.items())
        evaluate.append_jsonl(files.join(self.model_dir, METRICS_FILE), record)
        log(message)
        return values
