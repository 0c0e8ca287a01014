"""The DVD-GAN training loop: data, checkpoints and resumption, crash safety, TensorBoard, samples, exports.

Everything here is configured through the gin configurable ``train``; the binary passes only ``model_dir`` and
the distribution strategy. Files in model_dir:
  operative_config.gin   the full gin configuration of the run (also shown in TensorBoard's text tab)
  checkpoints/ckpt-<step> tf.train.CheckpointManager checkpoints (last ``keep_checkpoints`` kept)
  events.out.tfevents.*  TensorBoard scalars, GIF samples and the config
  metrics.jsonl          one JSON record per evaluation (step, metric name, value)
  export/<step>/         SavedModels of the EMA generator
"""
import contextlib
import math
import os
import signal
import time

import gin
import keras
import tensorflow as tf

from dvdgan_tf.nets import networks as models
from dvdgan_tf.errors import ConfigError, DvdganError
from dvdgan_tf.training.run_dir import CHECKPOINT_DIR, CHECKPOINT_PREFIX, CONFIG_FILE
from dvdgan_tf.training.step import GanTrainer
from dvdgan_tf.nets.generator import build_generator
from dvdgan_tf.io.console import ProgressBar
from dvdgan_tf.io.console import log
from dvdgan_tf.training.monitors import ClassAccuracyMonitor, MetricsMonitor, SampleWriter


class TrainingDivergedError(DvdganError):
    """A loss became NaN or Inf; the last good checkpoint is kept as the latest."""


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks after each step (so a checkpoint can be written)."""

    def __init__(self):
        self.signal = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame):
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _make_optimizer(learning_rate, beta_1, beta_2, variables):
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=1e-8)
    optimizer.build(variables)  # slots created now, inside the strategy scope (not lazily inside tf.function)
    return optimizer


def _build_trainer(strategy, networks, ema, global_batch_size, d_steps_per_g_step, g_learning_rate, d_learning_rate,
                   beta_1, beta_2, ema_decay, ema_start_step, seed, jit_compile):
    with strategy.scope():
        models.build_weights_eagerly(networks)
        ema(tf.zeros([1, ema.z_dim]), tf.zeros([1], tf.int32))
        trainer = GanTrainer(
            strategy, networks, ema,
            _make_optimizer(g_learning_rate, beta_1, beta_2, networks.G.trainable_variables),
            _make_optimizer(d_learning_rate, beta_1, beta_2,
                            networks.D_S.trainable_variables + networks.D_T.trainable_variables),
            global_batch_size, d_steps=d_steps_per_g_step, ema_decay=ema_decay, ema_start_step=ema_start_step,
            seed=seed, jit_compile=jit_compile)
        trainer.copy_generator_to_ema()
    return trainer


def _checkpoint_manager(trainer, model_dir, keep):
    checkpoint = tf.train.Checkpoint(step=trainer.step, G=trainer.G, G_ema=trainer.G_ema, D_S=trainer.D_S,
                                     D_T=trainer.D_T, g_optimizer=trainer.g_optimizer,
                                     d_optimizer=trainer.d_optimizer)
    return tf.train.CheckpointManager(checkpoint, os.path.join(model_dir, CHECKPOINT_DIR), max_to_keep=keep,
                                      checkpoint_name=CHECKPOINT_PREFIX)


@contextlib.contextmanager
def _precision_policy(name):
    """Sets Keras's global dtype policy for the networks built inside; restores the previous one after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _latest_step(model_dir):
    """The step of model_dir's latest checkpoint (its file name ckpt-<step>), or 0 for a new run."""
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINT_DIR))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


def _distributed_data(strategy, dataset_fn, generator, global_batch_size, seed):
    def make(context):
        return dataset_fn(batch_size=context.get_per_replica_batch_size(global_batch_size),
                          num_frames=generator.num_frames, resolution=generator.resolution,
                          num_classes=generator.num_classes, training=True, seed=seed, input_context=context)
    return iter(strategy.distribute_datasets_from_function(make))


def _check_finite(losses, step):
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        raise TrainingDivergedError(
            f"training diverged at step {step}: " + ", ".join(f"{k} = {v}" for k, v in bad.items()) +
            ". The last good checkpoint is still the latest; lower the learning rates (train.g_learning_rate, "
            "train.d_learning_rate) or check the data, then re-run the same command to resume from it.")


def _write_config(model_dir):
    text = gin.config_str()
    tmp = os.path.join(model_dir, CONFIG_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, os.path.join(model_dir, CONFIG_FILE))
    return text


@gin.configurable("train", denylist=["model_dir", "strategy"])
def train(model_dir, strategy=None, num_steps=gin.REQUIRED, dataset_fn=gin.REQUIRED, global_batch_size=8,
          d_steps_per_g_step=2, g_learning_rate=1e-4, d_learning_rate=5e-4, beta_1=0.0, beta_2=0.999,
          ema_decay=0.9999, ema_start_step=20000, seed=0, jit_compile=False, log_every=10,
          checkpoint_every=500, keep_checkpoints=3, sample_every=500, export_every=0, samples_per_class=4,
          max_sample_classes=10, class_accuracy_every=0, class_accuracy_classifier_steps=200,
          class_accuracy_samples_per_class=16, metrics=(), metrics_every=0, metrics_batch_size=8,
          metrics_i3d=None, mixed_precision=None, progress=True):
    """Trains DVD-GAN until ``num_steps`` G steps; resumes from model_dir's latest checkpoint if there is one.

    Args:
      model_dir: run directory (created). strategy: a tf.distribute strategy (default: the current one).
      num_steps: G updates in total. dataset_fn: a dataset function (gin: @moving_shapes, @prepared_videos).
      global_batch_size: clips per D update over all replicas (divisible by the replica count).
      d_steps_per_g_step: D updates per G update, each on a fresh real batch.
      g_learning_rate, d_learning_rate, beta_1, beta_2: Adam (paper: 1e-4, 5e-4; BigGAN's betas 0, 0.999).
      ema_decay, ema_start_step: EMA of G (paper: 0.9999 after 20k steps); samples and exports use it.
      seed: seeds z, labels, frame choices and the data stream. jit_compile: XLA for the replica steps.
      log_every, checkpoint_every, sample_every, export_every: intervals in steps (0 = never; a checkpoint and an
        export are always written at the end, and a checkpoint when stopped by SIGINT/SIGTERM).
      samples_per_class, max_sample_classes: the TensorBoard GIF grid (one row per class, fixed z).
      class_accuracy_every: measure the class accuracy of EMA samples with a small classifier trained on the
        real data (metrics.class_accuracy) at the start, at this interval and at the end (0 = never).
      class_accuracy_classifier_steps, class_accuracy_samples_per_class: its training steps and sample count.
      metrics, metrics_every: protocol names (e.g. ('fvd2048_16f',), see dvdgan_tf/metrics/protocols.py) computed
        on the EMA generator at this interval and at the end (0 = never), as dvdgan-eval computes them.
      metrics_batch_size: clips per generator call for them. metrics_i3d: I3D handle (None: built-in K400).
      mixed_precision: None (float32) or 'mixed_bfloat16' (bfloat16 compute; variables, BN statistics, SN
        vectors and losses stay float32).
      progress: show a progress bar with ETA on stderr.
    Returns:
      {"step": final step, "stopped_by": signal name or None, "losses": last losses}.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if mixed_precision not in (None, "mixed_bfloat16"):
        raise ConfigError(f"train.mixed_precision must be None or 'mixed_bfloat16', got {mixed_precision!r} "
                          f"(float16 would need loss scaling, which this loop does not do).")
    if global_batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(f"train.global_batch_size={global_batch_size} is not divisible by the "
                          f"{strategy.num_replicas_in_sync} replicas.")
    # Sub-layers made in build() take the dtype policy current at their first call: keep it for the whole run.
    with _precision_policy(mixed_precision or "float32"):
        with strategy.scope():
            networks = models.build_networks()  # configuration only: weights are created below
            ema = build_generator()
        start = _latest_step(model_dir)
        # The data first: a missing dataset stops the run before minutes of weight initialisation.
        data = _distributed_data(strategy, dataset_fn, networks.G, global_batch_size, seed + start)
        os.makedirs(model_dir, exist_ok=True)
        config_text = _write_config(model_dir)
        trainer = _build_trainer(strategy, networks, ema, global_batch_size, d_steps_per_g_step, g_learning_rate,
                                 d_learning_rate, beta_1, beta_2, ema_decay, ema_start_step, seed, jit_compile)
        manager = _checkpoint_manager(trainer, model_dir, keep_checkpoints)
        manager.restore_or_initialize()
        writer = tf.summary.create_file_writer(model_dir)
        with writer.as_default():
            tf.summary.text("config", "```\n" + config_text + "\n```", step=start)
            monitors = _Monitors(trainer.G_ema, dataset_fn, model_dir, config_text, seed, start,
                                 samples=(sample_every, samples_per_class, max_sample_classes),
                                 export_every=export_every,
                                 accuracy=(class_accuracy_every, class_accuracy_classifier_steps,
                                           class_accuracy_samples_per_class),
                                 metrics=(metrics_every, list(metrics), metrics_batch_size, metrics_i3d))
            speed = _SpeedLog(start, global_batch_size * d_steps_per_g_step, g_learning_rate, d_learning_rate)
            with _StopRequest() as stop, ProgressBar(num_steps, start, enabled=progress) as bar:
                step, losses = start, {}
                while step < num_steps and stop.signal is None:
                    losses = {k: float(v) for k, v in trainer.train_step(data).items()}
                    step = int(trainer.step.numpy())
                    _check_finite(losses, step)
                    bar.update(step, losses)
                    if log_every and step % log_every == 0:
                        speed.write(losses, step)
                    if checkpoint_every and step % checkpoint_every == 0:
                        manager.save(checkpoint_number=step)
                    if step < num_steps:
                        monitors.after_step(step)
            if not (manager.latest_checkpoint or "").endswith(f"-{step}"):
                manager.save(checkpoint_number=step)
            if stop.signal is None:
                monitors.at_end(step)
            else:
                log(f"stopped by {stop.signal} at step {step}; checkpoint saved. Re-run the same command to "
                    f"resume.")
        writer.flush()
        return {"step": step, "stopped_by": stop.signal, "losses": losses}


class _Monitors:
    """Everything a run does at intervals besides training: GIF samples, exports, class accuracy, metrics.

    samples: (every, per_class, max_classes). accuracy: (every, classifier_steps, samples_per_class).
    metrics: (every, protocol names, batch_size, i3d handle). An interval of 0 turns a monitor off; each one
    also runs at the end of a finished run. Call inside the run's summary writer.
    """

    def __init__(self, generator, dataset_fn, model_dir, config_text, seed, start, samples, export_every,
                 accuracy, metrics):
        self.sample_every, self.export_every = samples[0], export_every
        self.samples = SampleWriter(generator, model_dir, samples[1], samples[2], seed)
        self.accuracy_every, self.accuracy = accuracy[0], None
        if accuracy[0]:
            self.accuracy = ClassAccuracyMonitor(generator, dataset_fn, model_dir, accuracy[1], accuracy[2], seed)
            self.accuracy.measure(start)
        self.metrics_every, self.metrics = metrics[0], None
        if metrics[0] and metrics[1]:
            self.metrics = MetricsMonitor(generator, dataset_fn, model_dir, metrics[1], config_text, seed,
                                          metrics[2], metrics[3])

    def after_step(self, step):
        if self.sample_every and step % self.sample_every == 0:
            self.samples.write(step)
        if self.export_every and step % self.export_every == 0:
            self.samples.export(step)
        if self.accuracy and step % self.accuracy_every == 0:
            self.accuracy.measure(step)
        if self.metrics and step % self.metrics_every == 0:
            self.metrics.measure(step)

    def at_end(self, step):
        self.samples.write(step)
        for monitor in (self.accuracy, self.metrics):
            if monitor is not None:
                monitor.measure(step)
        self.samples.export(step)


class _SpeedLog:
    """Writes losses, steps/s, clips/s and learning rates at the logging interval."""

    def __init__(self, start, clips_per_step, g_lr, d_lr):
        self.tick, self.tick_step = time.time(), start
        self.clips_per_step, self.g_lr, self.d_lr = clips_per_step, g_lr, d_lr

    def write(self, losses, step):
        rate = (step - self.tick_step) / max(time.time() - self.tick, 1e-9)
        _log_scalars(losses, rate, self.clips_per_step, self.g_lr, self.d_lr, step)
        self.tick, self.tick_step = time.time(), step


def _log_scalars(losses, steps_per_sec, clips_per_step, g_lr, d_lr, step):
    for name, value in losses.items():
        tf.summary.scalar(f"loss/{name}", value, step=step)
    tf.summary.scalar("speed/steps_per_sec", steps_per_sec, step=step)
    tf.summary.scalar("speed/clips_per_sec", steps_per_sec * clips_per_step, step=step)
    tf.summary.scalar("learning_rate/G", g_lr, step=step)
    tf.summary.scalar("learning_rate/D", d_lr, step=step)

