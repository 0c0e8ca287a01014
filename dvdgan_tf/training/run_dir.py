"""The run directory (``model_dir``) that dvdgan-train owns, defined once:

  operative_config.gin     the full gin configuration of the run
  checkpoints/ckpt-<step>  tf.train checkpoints (``.index`` + ``.data-*``); ``checkpoints/corrupt/`` holds
                           unreadable ones moved aside on resume
  events.out.tfevents.*    TensorBoard scalars, GIF samples and the config
  metrics.jsonl            one JSON record per evaluation
  export/<step>/           SavedModels of the EMA generator
  stats/                   cached real-data statistics of the training-time metrics
  lock                     who is training into this folder now (host, pid, start time)

Also here: listing checkpoints with a fallback past unreadable ones, restoring G_ema for export, and the lock
that keeps two trainers out of one folder.
"""
import datetime
import json
import os
import re
import socket
import time

import gin
import keras
import tensorflow as tf

from dvdgan_tf.errors import ConfigError, DataError
from dvdgan_tf.export import saved_model
from dvdgan_tf.io import files
from dvdgan_tf.io.console import log
from dvdgan_tf.nets import normalization
from dvdgan_tf.nets.generator import build_generator
from dvdgan_tf.nets import networks as models
from dvdgan_tf.nets import standing_stats

CONFIG_FILE = "operative_config.gin"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PREFIX = "ckpt"
CORRUPT_DIR = "corrupt"
EXPORT_DIR = "export"
METRICS_FILE = "metrics.jsonl"
STATS_DIR = "stats"
LOCK_FILE = "lock"
_STEP_KEY = "step/.ATTRIBUTES/VARIABLE_VALUE"


def checkpoint_dir(model_dir):
    return files.join(model_dir, CHECKPOINT_DIR)


def _checkpoint_prefixes(model_dir):
    """{number in the file name: prefix} of every checkpoint in the checkpoint folder (``ckpt-<n>.index`` or
    ``ckpt-<n>.data-*``)."""
    folder = checkpoint_dir(model_dir)
    found = {}
    for path in tf.io.gfile.glob(files.join(folder, f"{CHECKPOINT_PREFIX}-*")):
        # ckpt-<n>.index or ckpt-<n>.data-*: a checkpoint whose .index is lost is still listed (as unreadable)
        match = re.fullmatch(rf"({CHECKPOINT_PREFIX}-(\d+))\.(index|data-\d+-of-\d+)", os.path.basename(path))
        if match:
            found[int(match.group(2))] = files.join(folder, match.group(1))
    return found


def check_checkpoint(prefix):
    """Reads every tensor of the checkpoint at ``prefix`` (checksums included); returns its ``step`` value,
    or raises DataError with the reason in one line."""
    if not tf.io.gfile.exists(prefix + ".index"):
        raise DataError(f"checkpoint {prefix} is unreadable (its .index file is missing)")
    try:
        # Not tf.train.load_checkpoint: it takes a prefix for a folder on file systems whose "folders" are name
        # prefixes (ram://), and then looks for a state file inside it.
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
        return int(reader.get_tensor(_STEP_KEY))
    except (tf.errors.OpError, ValueError, KeyError, IndexError, OSError) as e:  # IndexError: truncated data
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"checkpoint {prefix} is unreadable ({type(e).__name__}: {reason[:200]})") from e


def readable_checkpoints(model_dir, warn=True, up_to=None):
    """({step: prefix} of the usable checkpoints, [(prefix, reason)] of those found unreadable).

    The checkpoint folder is listed (TensorFlow's ``checkpoint`` state file is not trusted: it may be stale or
    lost). From the newest (or the newest at or below step ``up_to``) downwards, each checkpoint is read back
    completely (every tensor, checksums included) until one succeeds; the ones older than that are listed
    without reading them (resuming and exporting use the newest; reading every checkpoint would cost minutes for
    the paper configs' multi-gigabyte ones), and those newer than ``up_to`` are listed unread too. Each
    unreadable one is reported with a one-line warning when ``warn``."""
    prefixes = _checkpoint_prefixes(model_dir)
    good, bad, found = {}, [], False
    for number in sorted(prefixes, reverse=True):
        prefix = prefixes[number]
        if found or (up_to is not None and number > up_to):
            good[number] = prefix
            continue
        try:
            good[check_checkpoint(prefix)] = prefix
            found = True
        except DataError as e:
            bad.append((prefix, str(e)))
            if warn:
                log(f"warning: {e}; using the newest readable checkpoint instead.")
    return good, bad[::-1]  # every unreadable one is newer than every usable one


def list_checkpoints(model_dir):
    """{training step: checkpoint prefix} of model_dir's usable checkpoints (see readable_checkpoints)."""
    return readable_checkpoints(model_dir)[0]


def move_aside(prefix):
    """Moves the files of checkpoint ``prefix`` into ``checkpoints/corrupt/`` (kept for inspection, out of the
    way of resuming and of the checkpoint numbering). Returns the new folder."""
    folder = files.parent(prefix)
    target = files.makedirs(files.join(folder, CORRUPT_DIR))
    for path in tf.io.gfile.glob(prefix + ".*"):
        tf.io.gfile.rename(path, files.join(target, os.path.basename(path)), overwrite=True)
    return target


def write_config(model_dir, text):
    return files.write_text(files.join(model_dir, CONFIG_FILE), text)


def build_generator_from_config(config_path):
    """A Generator built as the gin file ``config_path`` binds ``G`` (other configurables are ignored), with its
    weights created symbolically (no activation computed) and zero-initialised, ready for a restore."""
    if not tf.io.gfile.exists(config_path):
        raise DataError(f"{config_path} not found: dvdgan-train writes it into model_dir when a run starts; "
                        f"without it the generator cannot be rebuilt.")
    gin.clear_config()
    try:
        gin.parse_config(files.read_text(config_path), skip_unknown=True)
        generator = build_generator(kernel_initializer="zeros")
    except (ValueError, KeyError, SyntaxError, IOError) as e:
        raise ConfigError(f"cannot build the generator from {config_path}: "
                          f"{(str(e).strip().splitlines() or [type(e).__name__])[0]}") from e
    models.build_generator_symbolically(generator)  # (with a symbolic context for a DVD-GAN-FP generator)
    return generator


def _checkpointed_ids(obj):
    return {id(t) for t in tf.train.TrackableView(obj).descendants()}


_MOVING_MEAN_KEY = "/moving_mean/.ATTRIBUTES/VARIABLE_VALUE"


def has_channel_statistics(prefix):
    """True when the checkpoint at ``prefix`` holds per-channel [C] BN moving statistics: written before the
    statistics became per frame [T, C] (see ``restore_channel_statistics``)."""
    shapes = tf.compat.v1.train.NewCheckpointReader(prefix).get_variable_to_shape_map()
    return any(name.endswith(_MOVING_MEAN_KEY) and len(shape) == 1 for name, shape in shapes.items())


def _channel_statistics_twin(generator):
    """A generator of ``generator``'s configuration (gin ``G``) with per-channel [C] BN statistics, built."""
    with normalization.channel_statistics():
        twin = build_generator(kernel_initializer="zeros")
        twin(tf.zeros([1, twin.z_dim]), tf.zeros([1], tf.int32))
    if [v.path for v in twin.variables] != [v.path for v in generator.variables]:
        raise RuntimeError("the per-channel-statistics twin of the generator does not match it variable by "
                           "variable: was the gin configuration changed after building it?")
    return twin


def restore_channel_statistics(prefix, objects, generators, expect_partial=False):
    """Restores a checkpoint written before per-frame BN statistics (``has_channel_statistics``).

    ``objects`` ({checkpoint name: trackable}) are restored as they are; each generator of ``generators``
    ({checkpoint name: built Generator}, per-frame layout, built under the gin configuration of the run) is
    restored through a twin with per-channel statistics, then takes the twin's weights and SN vectors, and its
    per-channel moving statistics repeated over the frames (a starting point only: recompute standing
    statistics before using an EMA generator). Call inside the strategy scope the generators were built in."""
    twins = {name: _channel_statistics_twin(g) for name, g in generators.items()}
    # Optimizers refer to the generators' variables: restored with the twins, those checkpoint entries would be
    # bound to the real generators and leave the twins' unbound. So the twins first, the optimizers after.
    optimizers = {k: v for k, v in objects.items() if isinstance(v, keras.optimizers.Optimizer)}
    others = {k: v for k, v in objects.items() if k not in optimizers}
    status = tf.train.Checkpoint(**others, **twins).restore(prefix)
    if expect_partial or optimizers:
        status.expect_partial()
    status.assert_existing_objects_matched()
    for name, generator in generators.items():
        for old, new in zip(twins[name].variables, generator.variables):
            value = tf.convert_to_tensor(old)
            new.assign(value if value.shape == new.shape else tf.broadcast_to(value, new.shape))
    if optimizers:
        status = tf.train.Checkpoint(**optimizers).restore(prefix)
        status.expect_partial()
        status.assert_existing_objects_matched()


def _run_seed(config_text):
    match = re.search(r"^\s*train\.seed\s*=\s*(\d+)\s*$", config_text, re.M)
    return int(match.group(1)) if match else 0


def restore_ema_generator(model_dir, step=None, standing=None):
    """Rebuilds the generator from model_dir/operative_config.gin and restores the EMA weights (``G_ema``).

    Replaces the global gin configuration with the run's. Args: model_dir: a dvdgan-train model dir.
    step: the training step to restore (default: the newest readable checkpoint; an unreadable newer one is
    skipped with a warning naming it). standing: recompute G_ema's standing statistics and SN vectors
    (``standing_stats.recompute``, keyed by the run's train.seed and the step) after restoring: True, False, or
    None (default) for only when the checkpoint predates per-frame statistics (it then holds no usable ones;
    newer checkpoints hold those the training loop computed before saving).
    Returns:
      (generator, step): a built Generator holding G_ema's weights, and its step (int).
    Raises DataError when model_dir has no readable checkpoint, no checkpoint for ``step`` (the message lists
    the available steps, or says why the one asked for is unreadable) or no operative config.
    """
    checkpoints, bad = readable_checkpoints(model_dir, warn=step is None, up_to=step)
    if step is not None and step not in checkpoints:
        for prefix, reason in bad:
            if prefix.endswith(f"-{step}"):
                raise DataError(f"{reason}. Readable steps: {', '.join(map(str, sorted(checkpoints))) or 'none'}.")
    if not checkpoints:
        what = f"no readable checkpoint ({len(bad)} unreadable)" if bad else "no checkpoint"
        raise DataError(f"{what} in {checkpoint_dir(model_dir)}: is --model_dir the folder given to "
                        f"dvdgan-train, and has that run saved a checkpoint yet?")
    if step is None:
        step = max(checkpoints)
    if step not in checkpoints:
        raise DataError(f"no checkpoint for step {step} in {model_dir}; available steps: "
                        f"{', '.join(map(str, sorted(checkpoints)))}.")
    generator = build_generator_from_config(files.join(model_dir, CONFIG_FILE))
    untracked = [v.path for v in generator.variables if id(v) not in _checkpointed_ids(generator)]
    if untracked:
        raise RuntimeError(f"{len(untracked)} generator variables are not part of its checkpoint (e.g. "
                           f"{untracked[:3]}): they would keep their initial values. Make them trackable.")
    step_var = tf.Variable(0, dtype=tf.int64)
    old_layout = has_channel_statistics(checkpoints[step])
    if old_layout:
        log(f"{checkpoints[step]} was written before per-frame BN statistics (it holds per-channel ones): "
            f"restoring its weights and recomputing G_ema's statistics.")
        restore_channel_statistics(checkpoints[step], {"step": step_var}, {"G_ema": generator},
                                   expect_partial=True)
    else:
        tf.train.Checkpoint(G_ema=generator, step=step_var).restore(
            checkpoints[step]).expect_partial().assert_existing_objects_matched()
    if getattr(generator, "context_frames", 0) and standing:
        # DVD-GAN-FP: standing statistics need a bank of real contexts, which the run directory does not hold; the
        # checkpoint holds those the training loop computed from its bank before saving.
        log("a prediction model (G.context_frames > 0): keeping the standing statistics its checkpoint holds (the "
            "training loop's, from real contexts) instead of recomputing them.")
    elif standing or (standing is None and old_layout):
        standing_stats.recompute(generator, seed=_run_seed(files.read_text(files.join(model_dir, CONFIG_FILE))),
                                 step=int(step_var.numpy()))
    return generator, int(step_var.numpy())


def export_checkpoint(model_dir, export_dir, step=None, on_progress=None, standing_truncations=None):
    """Restores G_ema of ``step`` (default: newest readable) from model_dir, recomputes its standing statistics
    and SN vectors (``standing_stats.recompute``; run's seed, the step) and exports it as a SavedModel with
    standing statistics for each of ``standing_truncations`` (default: gin ``export_generator.
    standing_truncations``); returns (export_dir, step)."""
    generator, step = restore_ema_generator(model_dir, step, standing=True)
    config_text = files.read_text(files.join(model_dir, CONFIG_FILE))
    extra = {} if standing_truncations is None else {"standing_truncations": tuple(standing_truncations)}
    return saved_model.export_generator(generator, export_dir, step=step, config_text=config_text,
                                        seed=_run_seed(config_text), **extra), step


class RunLock:
    """A lock file in model_dir naming the process that trains into it; a second trainer is refused.

    A lock left by a process that no longer runs on this host (killed with -9, crashed) is taken over with a
    warning. On a remote file system (gs://) the lock is advisory: there is no atomic create, and a lock of
    another host cannot be checked for liveness, so a stale one must be deleted by hand (the message says so).
    """

    def __init__(self, model_dir):
        self.path = files.join(model_dir, LOCK_FILE)
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(),
                      "started": datetime.datetime.now().isoformat(timespec="seconds")}
        self.held = False

    def _holder(self):
        try:
            return json.loads(files.read_text(self.path))
        except (tf.errors.OpError, OSError, ValueError):
            return None

    @staticmethod
    def _alive(holder):
        if holder.get("host") != socket.gethostname():
            return True  # cannot tell: assume it runs
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError, KeyError, TypeError):
            return True
        return True

    def acquire(self):
        files.makedirs(files.parent(self.path))
        for _ in range(3):
            if files.create_exclusive(self.path, json.dumps(self.owner)):
                self.held = True
                return self
            holder = self._holder()
            if holder is None:  # being written by another trainer this instant, or vanished: look again
                time.sleep(0.5)
                holder = self._holder()
            if holder is None:  # still unreadable: a torn lock of a crashed writer
                if tf.io.gfile.exists(self.path):
                    tf.io.gfile.remove(self.path)
                continue
            if self._alive(holder):
                where = "" if files.is_local(self.path) else (
                    " If that process is gone, delete the lock file by hand (remote locks are not checked).")
                raise ConfigError(
                    f"{files.parent(self.path)} is in use by another dvdgan-train (pid {holder.get('pid')} on "
                    f"{holder.get('host')}, started {holder.get('started')}): wait for it to finish or stop it, "
                    f"or choose another --model_dir.{where}")
            log(f"warning: taking over the stale lock of pid {holder.get('pid')} (no longer running) in "
                f"{self.path}.")
            tf.io.gfile.remove(self.path)
        raise ConfigError(f"could not take the lock {self.path}; delete it if no dvdgan-train uses this folder.")

    def release(self):
        if self.held:
            holder = self._holder()
            if holder and holder.get("pid") == self.owner["pid"] and holder.get("host") == self.owner["host"]:
                try:
                    tf.io.gfile.remove(self.path)
                except (tf.errors.OpError, OSError):
                    pass
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
