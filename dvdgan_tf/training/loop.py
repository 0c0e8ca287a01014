"""The DVD-GAN training loop: data, checkpoints and exact resumption, crash safety, TensorBoard, samples, exports.

Everything here is configured through the gin configurable ``train``; the binary passes only ``model_dir``, the
distribution strategy and its stop request. The run directory's layout is defined in ``training/run_dir.py``.

What a run guarantees:
- reproducible: the same configuration and ``train.seed`` give the same weights (initialisation, z, labels,
  frame choices and the data stream all derive from the seed; ``train.deterministic`` also asks TensorFlow for
  deterministic kernels);
- exact resume: a run stopped at step s and restarted continues as an uninterrupted run would (weights,
  optimizer slots, EMA, BN statistics, SN vectors and step from the checkpoint; per-step randomness keyed by the
  step; the data stream restarts at the example position of step s);
- one trainer per model_dir (a lock file), a checkpoint on SIGINT/SIGTERM that a second signal cannot
  interrupt, fallback past an unreadable newest checkpoint, and write errors (disk full) that end the run with
  one line, leave no temporary files and keep the last good checkpoint the latest.
"""
import contextlib
import inspect
import math
import numbers
import os
import time

import gin
import keras
import tensorflow as tf

from dvdgan_tf.errors import ConfigError, DataError, DvdganError, setting_error
from dvdgan_tf.io import files
from dvdgan_tf.io.console import ProgressBar, log
from dvdgan_tf.nets import networks as models
from dvdgan_tf.nets.generator import build_generator
from dvdgan_tf.nets.input_checks import is_integer
from dvdgan_tf.training import run_dir, strategies
from dvdgan_tf.nets import standing_stats
from dvdgan_tf.training.monitors import (ClassAccuracyMonitor, MetricsMonitor, PredictionCentroidMonitor,
                                         SampleWriter, centroid_settings, first_batch)
from dvdgan_tf.training.signals import StopRequest
from dvdgan_tf.training.step import GanTrainer


class TrainingDivergedError(DvdganError):
    """A loss became NaN or Inf; the last good checkpoint is kept as the latest."""


def _make_optimizer(learning_rate, beta_1, beta_2, variables):
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=1e-8)
    optimizer.build(variables)  # slots created now, inside the strategy scope (not lazily inside tf.function)
    return optimizer


def _build_trainer(strategy, networks, ema, global_batch_size, d_steps_per_g_step, g_learning_rate, d_learning_rate,
                   beta_1, beta_2, ema_decay, ema_start_step, seed, jit_compile):
    with strategy.scope():
        models.build_weights_eagerly(networks)
        models.build_generator_eagerly(ema)
        trainer = GanTrainer(
            strategy, networks, ema,
            _make_optimizer(g_learning_rate, beta_1, beta_2, networks.G.trainable_variables),
            _make_optimizer(d_learning_rate, beta_1, beta_2,
                            networks.D_S.trainable_variables + networks.D_T.trainable_variables),
            global_batch_size, d_steps=d_steps_per_g_step, ema_decay=ema_decay, ema_start_step=ema_start_step,
            seed=seed, jit_compile=jit_compile)
        trainer.copy_generator_to_ema()
    return trainer


_CHECKPOINT_PARTS = ("step", "G", "G_ema", "D_S", "D_T", "g_optimizer", "d_optimizer")


def _checkpoint(trainer):
    return tf.train.Checkpoint(**{name: getattr(trainer, name) for name in _CHECKPOINT_PARTS})


def _checkpoint_bytes(checkpoint):
    """Roughly the size of one checkpoint: the bytes of every variable it holds."""
    seen, total = set(), 0
    for obj in tf.train.TrackableView(checkpoint).descendants():
        if isinstance(obj, (tf.Variable, keras.Variable)) and id(obj) not in seen:
            seen.add(id(obj))
            total += math.prod(obj.shape) * tf.as_dtype(obj.dtype).size
    return total


class _Checkpoints:
    """The run's checkpoints: which one to resume from (skipping unreadable ones), restoring it, and saving
    with write errors turned into one line and no leftovers."""

    def __init__(self, model_dir, keep, write_dir=None):
        self.model_dir, self.keep = model_dir, keep
        self.folder = run_dir.checkpoint_dir(model_dir)
        # A multi-worker job's workers but the chief read model_dir's checkpoints and save (a collective op) into
        # a temporary folder of their own, deleted after each save: they change nothing in model_dir.
        self.write_dir = write_dir
        for name in ([] if write_dir else files.remove_leftovers(self.folder)):
            log(f"removed {files.join(self.folder, name)}, left by an interrupted save.")
        self.readable, bad = run_dir.readable_checkpoints(model_dir, warn=False)
        if bad and not self.readable:  # never start afresh over checkpoints that may only be unreachable now
            raise DataError(f"no checkpoint in {self.folder} can be read ({len(bad)} tried; the newest: "
                            f"{bad[-1][1]}). Repair the storage, or move {self.folder} aside to start afresh.")
        self.start = max(self.readable) if self.readable else 0
        for prefix, reason in bad:  # all newer than the one resumed (see readable_checkpoints): they would
            if write_dir:  # (the chief moves them)
                continue
            moved = run_dir.move_aside(prefix)  # shadow the resumed run's numbering
            log(f"warning: {reason}; moved it to {moved} and resuming from the newest readable checkpoint "
                f"(step {self.start}) instead.")
        self.manager = None

    def restore(self, checkpoint, trainer=None):
        """Restores the newest readable checkpoint into ``checkpoint`` (if any); sets up the manager. A checkpoint
        written before per-frame BN statistics is restored into ``trainer`` (run_dir.restore_channel_statistics)."""
        if self.readable:
            prefix = self.readable[self.start]
            try:
                if trainer is not None and run_dir.has_channel_statistics(prefix):
                    log(f"{prefix} was written before per-frame BN statistics: its per-channel statistics are "
                        f"repeated over the frames for G, and G_ema's are recomputed (standing statistics).")
                    with trainer.strategy.scope():
                        objects = {name: getattr(checkpoint, name) for name in _CHECKPOINT_PARTS
                                   if name not in ("G", "G_ema")}
                        run_dir.restore_channel_statistics(prefix, objects, {"G": trainer.G, "G_ema": trainer.G_ema})
                else:
                    checkpoint.restore(prefix).assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.OpError) as e:
                reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
                raise DataError(f"checkpoint {prefix} does not fit this configuration ({reason}). Resume with "
                                f"the run's own config ({run_dir.CONFIG_FILE} in model_dir) or use a new "
                                f"--model_dir.") from e
            # TensorFlow's state file lists what the manager may delete later: make it what is really there.
            names = [os.path.basename(self.readable[s]) for s in sorted(self.readable)]
            state = (f'model_checkpoint_path: "{names[-1]}"\n' +
                     "".join(f'all_model_checkpoint_paths: "{n}"\n' for n in names))
            current = tf.train.get_checkpoint_state(self.folder)
            listed = [os.path.basename(p) for p in current.all_model_checkpoint_paths] if current else []
            if not self.write_dir and (listed != names or
                                       os.path.basename(current.model_checkpoint_path) != names[-1]):
                files.write_text(files.join(self.folder, "checkpoint"), state)
            log(f"resuming from {prefix} (step {self.start}).")
        self.manager = tf.train.CheckpointManager(checkpoint, self.write_dir or self.folder, max_to_keep=self.keep,
                                                  checkpoint_name=run_dir.CHECKPOINT_PREFIX)
        self.needed_bytes = _checkpoint_bytes(checkpoint)

    def has(self, step):
        return (self.manager.latest_checkpoint or "").endswith(f"-{step}")

    def save(self, step):
        folder = self.write_dir or self.folder
        try:
            self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as e:
            files.remove_leftovers(folder)
            for path in tf.io.gfile.glob(files.join(folder, f"{run_dir.CHECKPOINT_PREFIX}-{step}.*")):
                tf.io.gfile.remove(path)  # a partial checkpoint of this step (the state file never named it)
            raise files.storage_error(files.join(folder, f"{run_dir.CHECKPOINT_PREFIX}-{step}"), e,
                                      self.needed_bytes) from e
        if self.write_dir:
            files.remove(self.write_dir)


@contextlib.contextmanager
def _precision_policy(name):
    """Sets Keras's global dtype policy for the networks built inside; restores the previous one after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _distributed_data(strategy, dataset_fn, generator, global_batch_size, seed, start_example):
    """The training batches; the stream starts at example ``start_example`` of the seed's stream when the
    dataset function supports it (exact resume), else restarts with a seed offset (with a warning)."""
    exact = "start_example" in inspect.signature(dataset_fn).parameters
    if not exact and start_example:
        log(f"warning: {getattr(dataset_fn, '__name__', dataset_fn)} has no start_example argument: the data "
            f"stream restarts with seed {seed} + {start_example} instead of continuing where it stopped.")
        seed = seed + start_example

    def make(context):
        kwargs = {"start_example": start_example} if exact else {}
        return dataset_fn(batch_size=context.get_per_replica_batch_size(global_batch_size),
                          num_frames=generator.num_frames, resolution=generator.resolution,
                          num_classes=generator.num_classes, training=True, seed=seed, input_context=context,
                          **kwargs)
    return iter(strategy.distribute_datasets_from_function(make))


def _check_finite(losses, step):
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        raise TrainingDivergedError(
            f"training diverged at step {step}: " + ", ".join(f"{k} = {v}" for k, v in bad.items()) +
            ". The last good checkpoint is still the latest; lower the learning rates (train.g_learning_rate, "
            "train.d_learning_rate) or check the data, then re-run the same command to resume from it.")


def _setting_error(name, value, wanted):
    return setting_error(f"train.{name}", value, wanted)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_settings(settings):
    """Raises ConfigError (one line naming the setting and the fix) for a value ``train`` cannot use."""
    ints = {"num_steps": 1, "global_batch_size": 1, "d_steps_per_g_step": 1, "ema_start_step": 0, "seed": 0,
            "log_every": 0, "checkpoint_every": 0, "keep_checkpoints": 1, "sample_every": 0, "export_every": 0,
            "samples_per_class": 1, "max_sample_classes": 1, "class_accuracy_every": 0,
            "class_accuracy_classifier_steps": 1, "class_accuracy_samples_per_class": 1, "metrics_every": 0,
            "metrics_batch_size": 1, "steps_per_loop": 1}
    for name, minimum in ints.items():
        value = settings[name]
        if not is_integer(value) or value < minimum:
            raise _setting_error(name, value, f"an integer >= {minimum}")
    loop = settings["steps_per_loop"]
    for name in ("log_every", "checkpoint_every", "sample_every", "export_every", "class_accuracy_every",
                 "metrics_every"):  # they happen between loops of steps_per_loop steps
        if settings[name] % loop:
            raise ConfigError(f"train.{name}={settings[name]} is not a multiple of train.steps_per_loop={loop}: "
                              f"set it to a multiple (logging, checkpoints and monitors run between loops).")
    for name in ("g_learning_rate", "d_learning_rate"):
        if not _is_real(settings[name]) or settings[name] <= 0:
            raise _setting_error(name, settings[name], "a number > 0")
    for name in ("beta_1", "beta_2"):
        if not _is_real(settings[name]) or not 0 <= settings[name] < 1:
            raise _setting_error(name, settings[name], "a number in [0, 1)")
    if not _is_real(settings["ema_decay"]) or not 0 <= settings["ema_decay"] <= 1:
        raise _setting_error("ema_decay", settings["ema_decay"], "a number in [0, 1]")
    for name in ("jit_compile", "progress", "deterministic", "export_at_end"):
        if not isinstance(settings[name], bool):
            raise _setting_error(name, settings[name], "True or False")
    if not callable(settings["dataset_fn"]):
        raise _setting_error("dataset_fn", settings["dataset_fn"], "a dataset function such as @moving_shapes "
                             "or @prepared_videos")
    metrics = settings["metrics"]
    if isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics):
        raise _setting_error("metrics", metrics, "a tuple of protocol names, e.g. ('fvd2048_16f',)")
    if settings["mixed_precision"] not in (None, "mixed_bfloat16"):
        raise ConfigError(f"train.mixed_precision must be None or 'mixed_bfloat16', got "
                          f"{settings['mixed_precision']!r} (float16 would need loss scaling, which this loop "
                          f"does not do).")


def _seed_everything(seed, deterministic):
    """Initial weights (Keras initialisers), Python's and NumPy's generators from ``seed``; deterministic
    TensorFlow kernels when asked (process-wide, it cannot be switched off again)."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


@gin.configurable("train", denylist=["model_dir", "strategy", "stop"])
def train(model_dir, strategy=None, stop=None, num_steps=gin.REQUIRED, dataset_fn=gin.REQUIRED,
          global_batch_size=8, d_steps_per_g_step=2, g_learning_rate=1e-4, d_learning_rate=5e-4, beta_1=0.0,
          beta_2=0.999, ema_decay=0.9999, ema_start_step=20000, seed=0, deterministic=False, jit_compile=False,
          steps_per_loop=1, log_every=10, checkpoint_every=500, keep_checkpoints=3, sample_every=500, export_every=0,
          export_at_end=True, samples_per_class=4, max_sample_classes=10, class_accuracy_every=0,
          class_accuracy_classifier_steps=200, class_accuracy_samples_per_class=16, metrics=(), metrics_every=0, metrics_batch_size=8,
          metrics_i3d=None, metrics_compare_live=False, mixed_precision=None, progress=True):
    """Trains DVD-GAN until ``num_steps`` G steps; resumes from model_dir's newest readable checkpoint.

    Args:
      model_dir: run directory (created; locked while training). strategy: a tf.distribute strategy (default:
        the current one). stop: a signals.StopRequest already entered by the caller (default: one of its own).
      num_steps: G updates in total. dataset_fn: a dataset function (gin: @moving_shapes, @prepared_videos).
      global_batch_size: clips per D update over all replicas (divisible by the replica count).
      d_steps_per_g_step: D updates per G update, each on a fresh real batch.
      g_learning_rate, d_learning_rate, beta_1, beta_2: Adam (paper: 1e-4, 5e-4; BigGAN's betas 0, 0.999).
      ema_decay, ema_start_step: EMA of G (paper: 0.9999 after 20k steps); samples and exports use it.
      seed: seeds the initial weights, z, labels, frame choices and the data stream.
      deterministic: ask TensorFlow for deterministic kernels (tf.config.experimental.enable_op_determinism,
        process-wide), so that equal seeds give bit-equal runs. jit_compile: compile each replica's whole step
        (its D updates, the G update and the EMA) with XLA.
      steps_per_loop: G steps per call into TensorFlow (one tf.function runs them; the host stays out of the
        loop, as TPUs need). Logging, checkpoints, samples, exports, metrics and stop requests are handled
        between loops, so every interval below must be a multiple of it (else ConfigError); loops end at
        multiples of it (a resumed run realigns) and the last one at num_steps. A loop stops early after a step
        whose losses are not finite, and the run ends with TrainingDivergedError naming that step.
      log_every, checkpoint_every, sample_every, export_every: intervals in steps (0 = never; a checkpoint is
        always written at the end, and when stopped by SIGINT/SIGTERM).
      export_at_end: export the EMA generator to model_dir/export/<step>/ when the run finishes.
      samples_per_class, max_sample_classes: the TensorBoard GIF grid (one row per class, fixed z).
      class_accuracy_every: measure the class accuracy of EMA samples with a small classifier trained on the
        real data (metrics.class_accuracy) at the start, at this interval and at the end (0 = never).
      class_accuracy_classifier_steps, class_accuracy_samples_per_class: its training steps and sample count.
      metrics, metrics_every: protocol names (e.g. ('fvd2048_16f',), see dvdgan_tf/metrics/protocols.py) computed
        on the EMA generator at this interval and at the end (0 = never), as dvdgan-eval computes them.
      metrics_batch_size: clips per generator call for them. metrics_i3d: I3D handle (None: built-in K400).
      metrics_compare_live: also compute them for the live G (eval_live/<name>), to compare with what is shipped.
      mixed_precision: None (float32) or 'mixed_bfloat16' (bfloat16 compute; variables, BN statistics, SN
        vectors and losses stay float32).
      progress: show a progress bar with ETA on stderr.
    Returns:
      {"step": final step, "stopped_by": signal name or None, "losses": last losses}.
    """
    settings = {k: v for k, v in locals().items() if k not in ("model_dir", "strategy", "stop")}
    check_settings(settings)
    strategy = strategy or tf.distribute.get_strategy()
    if global_batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(f"train.global_batch_size={global_batch_size} is not divisible by the "
                          f"{strategy.num_replicas_in_sync} replicas.")
    several_cpus = isinstance(strategy, tf.distribute.MirroredStrategy) and strategy.num_replicas_in_sync > 1
    if jit_compile and (mixed_precision or several_cpus) and not (tf.config.list_logical_devices("GPU") or
                                                              tf.config.list_logical_devices("TPU")):
        raise ConfigError("train.jit_compile cannot run on CPU with train.mixed_precision='mixed_bfloat16' (XLA:CPU "
                          "rejects bfloat16 gradients) or with several local replicas (XLA:CPU runs them all on the "
                          "first device): on CPU use it with float32 and one replica.")
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(stop or StopRequest())
        if strategies.is_chief(strategy):  # (the lock is the chief's: other workers write nothing in model_dir)
            stack.enter_context(run_dir.RunLock(model_dir))
        temp_dir = strategies.worker_temp_dir(model_dir, strategy)  # multi-worker jobs only
        if temp_dir:
            files.remove(temp_dir)  # left by a killed run of this worker
            stack.callback(files.remove, temp_dir)
            stop.defer()  # workers agree on stopping after each step (a signal may reach only one of them)
        # Sub-layers made in build() take the dtype policy current at their first call: keep it for the run.
        stack.enter_context(_precision_policy(mixed_precision or "float32"))
        try:
            return _train(model_dir, strategy, stop, **settings)
        except tf.errors.OpError as e:  # a multi-worker job's lost worker or timed-out collective: one line
            lost = strategies.lost_worker_error(strategy, e)
            if lost is None:
                raise
            raise lost from e


def _train(model_dir, strategy, stop, num_steps, dataset_fn, global_batch_size, d_steps_per_g_step,
           g_learning_rate, d_learning_rate, beta_1, beta_2, ema_decay, ema_start_step, seed, deterministic,
           jit_compile, steps_per_loop, log_every, checkpoint_every, keep_checkpoints, sample_every, export_every,
           export_at_end, samples_per_class, max_sample_classes, class_accuracy_every,
           class_accuracy_classifier_steps, class_accuracy_samples_per_class, metrics, metrics_every, metrics_batch_size, metrics_i3d,
           metrics_compare_live, mixed_precision, progress):
    del mixed_precision  # applied by the caller
    _seed_everything(seed, deterministic)
    with strategy.scope():
        networks = models.build_networks()  # configuration only: weights are created below
        ema = build_generator()
    # Multi-worker jobs: the chief writes model_dir; the others write what collective ops make every worker
    # write (checkpoint and export copies) into their own temporary folder, deleted right after.
    chief, temp_dir = strategies.is_chief(strategy), strategies.worker_temp_dir(model_dir, strategy)
    checkpoints = _Checkpoints(model_dir, keep_checkpoints,
                               write_dir=None if chief else files.join(temp_dir, run_dir.CHECKPOINT_DIR))
    start = checkpoints.start
    strategies.check_same_on_workers(strategy, start, "the checkpoint step to resume from", "give every worker the "
                                     "same --model_dir, on storage all of them reach (gs://, NFS).")
    # The data first: a missing dataset stops the run before minutes of weight initialisation.
    data = _distributed_data(strategy, dataset_fn, networks.G, global_batch_size, seed,
                             start_example=start * d_steps_per_g_step * global_batch_size)
    config_text = gin.config_str()
    if chief:
        run_dir.write_config(model_dir, config_text)
    trainer = _build_trainer(strategy, networks, ema, global_batch_size, d_steps_per_g_step, g_learning_rate,
                             d_learning_rate, beta_1, beta_2, ema_decay, ema_start_step, seed, jit_compile)
    checkpoints.restore(_checkpoint(trainer), trainer)
    if networks.G.context_frames:  # DVD-GAN-FP: a fixed bank of real contexts for G_ema's standing statistics
        trainer.context_bank = _context_bank(dataset_fn, networks.G, seed)
    preemption = _preemption_handler(strategy, checkpoints, stop, start)
    writer = tf.summary.create_file_writer(model_dir) if chief else tf.summary.create_noop_writer()
    step, losses = start, {}
    with writer.as_default():
        tf.summary.text("config", "```\n" + config_text + "\n```", step=start)
        monitors = None
        if stop.signal is None:
            monitors = _Monitors(trainer.G_ema, trainer.refresh_ema, dataset_fn, model_dir, config_text, seed, start,
                                 samples=(sample_every, samples_per_class, max_sample_classes),
                                 export_every=export_every, export_at_end=export_at_end,
                                 accuracy=(class_accuracy_every, class_accuracy_classifier_steps,
                                           class_accuracy_samples_per_class),
                                 metrics=(metrics_every, list(metrics), metrics_batch_size, metrics_i3d, strategy,
                                          networks.G if metrics_compare_live else None),
                                 chief=chief, temp_dir=temp_dir)
        speed = _SpeedLog(start, global_batch_size * d_steps_per_g_step, g_learning_rate, d_learning_rate)
        with ProgressBar(num_steps, start, enabled=progress and chief) as bar:
            while step < num_steps and stop.signal is None:
                # Up to the next multiple of steps_per_loop (where every interval falls), at most to num_steps.
                count = min(steps_per_loop - step % steps_per_loop, num_steps - step)
                losses = {k: float(v) for k, v in trainer.train_steps(data, count).items()}
                step = int(trainer.step.numpy())
                if temp_dir:  # multi-worker: all stop after this step if any worker was signalled (collective)
                    stop.agree(strategies.any_worker(strategy, stop.received is not None))
                if preemption is not None:  # Google Cloud GPU VMs: a maintenance notice saves and stops all
                    preemption.save_checkpoint_if_preempted(checkpoint_number=step)
                _check_finite(losses, step)
                bar.update(step, losses)
                if log_every and step % log_every == 0:
                    speed.write(losses, step)
                if checkpoint_every and step % checkpoint_every == 0:
                    trainer.refresh_ema()  # the checkpoint carries G_ema's own statistics
                    checkpoints.save(step)
                if step < num_steps and stop.signal is None:
                    monitors.after_step(step)
        if stop.signal is None:  # (not when stopped by a signal: saving must be quick then)
            trainer.refresh_ema()
        stop.saving = True
        if step > start and not checkpoints.has(step):
            checkpoints.save(step)
        if stop.signal is None:
            monitors.at_end(step)
        elif step > start:
            log(f"stopped by {stop.signal} at step {step}; checkpoint saved. Re-run the same command to resume.")
        else:
            log(f"stopped by {stop.signal} during start-up, at step {step}; nothing new to save. Re-run the same "
                f"command to start again.")
    writer.flush()
    return {"step": step, "stopped_by": stop.signal, "losses": losses}


def _preemption_handler(strategy, checkpoints, stop, step):
    """strategies.preemption_handler on the run's checkpoint manager (None where it does nothing): on a
    maintenance notice every worker saves at the same step, then the loop stops as for SIGTERM."""
    def saved():
        stop.signal = stop.signal or "a preemption notice"
    handler = strategies.preemption_handler(strategy, checkpoints.manager, saved)
    if handler is not None and hasattr(handler, "_run_counter"):
        # It counts its calls from a variable it adds to the checkpoint, which only the chief's folder holds:
        # start every worker's count at the step, so that all agree on the step to save at.
        handler._checkpointed_runs.assign(step)  # pylint: disable=protected-access
        handler._run_counter = step  # pylint: disable=protected-access
    return handler


def _context_bank(dataset_fn, generator, seed):
    """(contexts [N, C, H, W, 3], labels [N]) of the first N = standing_stats.CONTEXT_BANK_SIZE clips of the
    training stream of ``seed``: drawn once at start-up (the same on resume), they condition G_ema in its
    standing-statistics passes."""
    video, labels = first_batch(dataset_fn, generator, standing_stats.CONTEXT_BANK_SIZE, seed, training=True)[:2]
    return video[:, :generator.context_frames], labels


class _Monitors:
    """Everything a run does at intervals besides training: GIF samples, exports, class accuracy, metrics.

    samples: (every, per_class, max_classes). accuracy: (every, classifier_steps, samples_per_class).
    metrics: (every, protocol names, batch_size, i3d handle, strategy, live G or None). An interval of 0 turns a monitor off; each one
    also runs at the end of a finished run. Call inside the run's summary writer. ``refresh`` (GanTrainer.
    refresh_ema) runs before each use of the generator: G_ema's own standing statistics and SN vectors.
    Multi-worker jobs (temp_dir: this worker's temporary folder): every worker runs the collective parts (refresh,
    exports' standing statistics, metrics over the replicas; real statistics cached in temp_dir for the session);
    only the chief writes into model_dir, the others write into temp_dir (exports deleted right after).
    """

    def __init__(self, generator, refresh, dataset_fn, model_dir, config_text, seed, start, samples, export_every,
                 export_at_end, accuracy, metrics, chief=True, temp_dir=None):
        self.refresh, self.chief, self.temp_dir = refresh, chief, temp_dir
        model_dir = model_dir if chief else files.join(temp_dir, "files")
        self.sample_every, self.export_every, self.export_at_end = samples[0], export_every, export_at_end
        real_clips = None
        if generator.context_frames:  # DVD-GAN-FP: the grid continues held-out real clips
            real_clips = first_batch(dataset_fn, generator, samples[1] * min(samples[2], generator.num_classes),
                                     seed)
        self.samples = SampleWriter(generator, model_dir, samples[1], samples[2], seed, strategy=metrics[4],
                                    real_clips=real_clips)
        self.centroid_every, clips = centroid_settings()
        self.centroid = None
        if self.centroid_every:
            self.refresh()  # (every worker: a collective op in a multi-worker job; the chief measures)
            if chief:
                self.centroid = PredictionCentroidMonitor(generator, dataset_fn, model_dir, clips, seed)
                self.centroid.measure(start)
        self.accuracy_every, self.accuracy = accuracy[0], None
        if accuracy[0]:
            self.refresh()
            if chief:
                self.accuracy = ClassAccuracyMonitor(generator, dataset_fn, model_dir, accuracy[1], accuracy[2],
                                                     seed)
                self.accuracy.measure(start)
        self.metrics_every, self.metrics = metrics[0], None
        if metrics[0] and metrics[1]:
            self.metrics = MetricsMonitor(generator, dataset_fn, model_dir, metrics[1], config_text, seed,
                                          metrics[2], metrics[3], strategy=metrics[4], live_generator=metrics[5])
            if temp_dir:  # all workers must find the same cached real statistics: their computation is collective
                self.metrics.stats_dir = files.join(temp_dir, "stats")

    def after_step(self, step):
        if any(every and step % every == 0 for every in (
                self.sample_every, self.export_every, self.accuracy_every,
                self.metrics and self.metrics_every, self.centroid_every)):
            self.refresh()  # (on every worker, also where the monitor itself is the chief's only)
        if self.sample_every and step % self.sample_every == 0 and self.chief:
            self.samples.write(step)
        if self.export_every and step % self.export_every == 0:
            self._export(step)
        if self.accuracy and step % self.accuracy_every == 0:
            self.accuracy.measure(step)
        if self.metrics and step % self.metrics_every == 0:
            self.metrics.measure(step)
        if self.centroid and step % self.centroid_every == 0:
            self.centroid.measure(step)

    def _export(self, step):
        """SampleWriter.export on every worker (its standing statistics are a collective op); a worker's copy
        (not the chief's) is deleted at once."""
        path = self.samples.export(step)
        if not self.chief:
            files.remove(path)
        return path

    def at_end(self, step):
        self.refresh()
        if self.chief:
            self.samples.write(step)
        for monitor in (self.accuracy, self.metrics, self.centroid):
            if monitor is not None:
                monitor.measure(step)
        if not self.export_at_end:
            return
        if self.chief:
            log(f"exporting the EMA generator of step {step} (SavedModel) ...")
        started = time.time()
        path = self._export(step)
        if self.chief:
            log(f"exported to {path} in {time.time() - started:.0f} s.")


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

