"""What a training run shows and ships from its EMA generator: GIF sample grids, class accuracy, SavedModels."""
import json
import os

import gin
import numpy as np
import tensorflow as tf

from dvdgan_tf import export, video_io
from dvdgan_tf.generator import sample_latents
from dvdgan_tf.metrics import class_accuracy
from dvdgan_tf.progress import log

EXPORT_DIR = "export"
METRICS_FILE = "metrics.jsonl"


class SampleWriter:
    """Writes the EMA generator's samples (fixed z, one row per class) to TensorBoard and exports it.

    Args:
      generator: the (EMA) Generator. model_dir: the run directory.
      samples_per_class: columns of the grid. max_classes: rows (the first classes). seed: fixes z.
    """

    def __init__(self, generator, model_dir, samples_per_class, max_classes, seed):
        self.generator, self.model_dir = generator, model_dir
        self.rows = min(max_classes, generator.num_classes)
        self.labels = tf.constant(np.repeat(np.arange(self.rows, dtype=np.int32), samples_per_class))
        self.z = sample_latents(len(self.labels), generator.z_dim, seed=tf.constant([seed, 4242]))

    def videos(self):
        """[rows * samples_per_class, T, H, W, 3] float32 in [-1, 1], row-major by class."""
        return self.generator(self.z, self.labels, training=False)

    def write(self, step):
        """An animated GIF grid (one row per class) under the tag ``samples/ema``."""
        video_io.gif_summary("samples/ema", self.videos(), step, rows=self.rows)

    def export(self, step):
        """The generator as a SavedModel in model_dir/export/<step>/; returns that path."""
        path = os.path.join(self.model_dir, EXPORT_DIR, str(step))
        export.export_generator(self.generator, path, step=step, config_text=gin.config_str())
        return path


class ClassAccuracyMonitor:
    """Trains a small classifier on the run's real data once, then measures the class accuracy of the EMA
    generator's samples (``metrics.class_accuracy``), into TensorBoard and metrics.jsonl."""

    def __init__(self, generator, dataset_fn, model_dir, classifier_steps, samples_per_class, seed):
        self.generator, self.model_dir, self.samples_per_class, self.seed = (
            generator, model_dir, samples_per_class, seed)
        self.classifier, real_accuracy = class_accuracy.train_classifier(
            dataset_fn, generator.num_frames, generator.resolution, generator.num_classes,
            steps=classifier_steps, seed=seed)
        log(f"class-accuracy classifier: {real_accuracy:.3f} on held-out real clips "
            f"(chance {1 / generator.num_classes:.3f})")

    def measure(self, step):
        """Returns the accuracy in [0, 1] at ``step`` and records it."""
        accuracy = class_accuracy.generated_class_accuracy(
            self.classifier, self.generator, self.generator.num_classes, self.samples_per_class, self.seed)
        tf.summary.scalar("eval/class_accuracy", accuracy, step=step)
        append_jsonl(os.path.join(self.model_dir, METRICS_FILE),
                     {"step": step, "metric": "class_accuracy", "value": accuracy,
                      "chance": 1 / self.generator.num_classes})
        log(f"step {step}: EMA-generator class accuracy {accuracy:.3f}")
        return accuracy


def append_jsonl(path, record):
    """Appends one JSON record as a line to ``path`` (flushed, so a crash loses at most that line)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
