"""What a training run shows and ships from its EMA generator: GIF sample grids, class accuracy, the named
evaluation metrics (FVD, FID, IS), SavedModels."""
import contextlib

import gin
import numpy as np
import tensorflow as tf

from dvdgan_tf.export import saved_model as export
from dvdgan_tf.io import video as video_io
from dvdgan_tf.nets import truncation as truncation_lib
from dvdgan_tf.nets.generator import sample_latents
from dvdgan_tf.metrics import class_accuracy, classifiers, evaluate, real_data
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
    """

    def __init__(self, generator, model_dir, samples_per_class, max_classes, seed, truncation_convention=None,
                 truncation=None, strategy=None):
        self.generator, self.model_dir, self.seed, self.strategy = generator, model_dir, seed, strategy
        self.rows = min(max_classes, generator.num_classes)
        self.labels = tf.constant(np.repeat(np.arange(self.rows, dtype=np.int32), samples_per_class))
        gin_convention, gin_value = truncation_lib.sample_grid_truncation()
        self.truncation_convention, self.truncation = truncation_lib.check(
            truncation_convention or gin_convention, gin_value if truncation is None else truncation)
        self.z = sample_latents(len(self.labels), generator.z_dim, self.truncation, seed=tf.constant([seed, 4242]),
                                convention=self.truncation_convention)

    def videos(self):
        """[rows * samples_per_class, T, H, W, 3] float32 in [-1, 1], row-major by class."""
        return self.generator(self.z, self.labels, training=False)

    def write(self, step):
        """An animated GIF grid (one row per class) under the tag ``samples/ema``."""
        video_io.gif_summary("samples/ema", self.videos(), step, rows=self.rows)

    def export(self, step):
        """The generator as a SavedModel in model_dir/export/<step>/, with standing statistics for the truncation
        values of gin ``export_generator.standing_truncations`` (keyed by the run's seed and the step, so value 0
        gives the statistics G_ema has now); returns that path. The generator's variables are left as they were."""
        path = files.join(self.model_dir, EXPORT_DIR, str(step))
        export.export_generator(self.generator, path, step=step, config_text=gin.config_str(),
                                truncation_convention=self.truncation_convention, seed=self.seed,
                                strategy=self.strategy)
        return path


GREY_STEPS_FACTOR = 3  # training steps of the colour-blind classifier, in units of the colour one's


class ClassAccuracyMonitor:
    """Trains two small classifiers on the run's real data once, one on colour clips and one on grey-scale clips
    (colour-blind: shape and motion only), then measures the class accuracy of the EMA generator's samples with
    each and their first-frame brightness ratio against the real clips' (``metrics.class_accuracy``), into
    TensorBoard (eval/class_accuracy, eval/colour_blind_class_accuracy, eval/first_frame_ratio and
    eval/first_frame_ratio_real) and metrics.jsonl."""

    def __init__(self, generator, dataset_fn, model_dir, classifier_steps, samples_per_class, seed):
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
        # Clip i's z and label depend on i and the seed only, whichever replica (or the host) makes it.
        self.clips = None if generator is None else self._clips(generator, seed)  # None: dataset_key() only
        self.live_clips = None if live_generator is None else self._clips(live_generator, seed)

    @staticmethod
    def _clips(g, seed):
        return evaluate.GeneratedClips(lambda z, labels: g(z, labels, training=False), g.z_dim, g.num_classes,
                                       (g.num_frames, g.resolution, g.resolution, 3), seed=seed)

    def dataset_key(self):
        """The real-statistics key of the run's evaluation data now (see the class docstring)."""
        return real_data.config_dataset_key(self.config_text, self.dataset_fn, training=False, seed=self.seed)

    def _compute(self, clips):
        g = self.generator
        real = self.dataset_fn(batch_size=self.batch_size, num_frames=g.num_frames, resolution=g.resolution,
                               num_classes=g.num_classes, training=False, seed=self.seed)
        return evaluate.compute_metrics(clips if self.strategy else clips.sequential(), real, self.metric_names,
                                        i3d=self.i3d, stats_cache_dir=files.join(self.model_dir, STATS_DIR),
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
