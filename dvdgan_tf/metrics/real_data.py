"""Where dvdgan-eval's real clips come from: a gin config's dataset function, or an .npz of uint8 videos.

Each source comes with a dataset key: a string that identifies the data exactly, under which the real
statistics are cached (``fvd.StatisticsCache``). For a dataset function (dvdgan-eval --gin_file, and the
training-time ``MetricsMonitor``) the key is ``config_dataset_key``: a hash of

  - the fully resolved gin configuration (``gin.config_str()`` after parsing: included files such as base.gin
    and every binding are in it, so editing any of them gives new statistics);
  - the prepared data's identity when the dataset function reads files (``<name>.data_dir`` bound in gin, e.g.
    ``prepared_videos.data_dir``): the absolute data folder and the content of its dataset.json, so re-preparing
    the data, or a relative data_dir seen from another working directory, gives new statistics. The embedded
    ``moving_shapes`` has no files: its configuration is its identity;
  - the split (training or not) and the seed.

For an .npz the key names the file by absolute path, size and modification time.
"""
import hashlib
import json
import os
import zipfile

import numpy as np

from dvdgan_tf.errors import ConfigError, DataError


def gin_dataset_fn():
    """The function bound to ``train.dataset_fn`` in the current gin configuration (parsed by the caller, e.g.
    with ``dvdgan_tf.config.parse_config``), its own bindings applied.

    The function follows the dataset contract: fn(batch_size, num_frames, resolution, num_classes, training=True,
    seed=0, input_context=None) -> tf.data.Dataset of (video [B, T, H, W, 3] in [-1, 1], label [B]).
    """
    import gin  # pylint: disable=import-outside-toplevel
    try:
        reference = gin.query_parameter("train.dataset_fn")
    except ValueError as e:
        raise ConfigError(f"the gin config binds no train.dataset_fn ({e}); add e.g. "
                          f"--gin_param='train.dataset_fn = @moving_shapes', or use --real_npz.") from e
    fn = getattr(reference, "scoped_configurable_fn", reference)
    if not callable(fn):
        raise ConfigError(f"train.dataset_fn is bound to {reference!r}, which is not a function.")
    return fn


def dataset_data_dir(dataset_fn):
    """The folder ``dataset_fn`` reads, from the current gin config (``<its gin name>.data_dir``), made absolute
    against the working directory as the dataset function will see it; None for a function without files."""
    import gin  # pylint: disable=import-outside-toplevel
    name = getattr(dataset_fn, "__name__", None) or getattr(getattr(dataset_fn, "configurable", None), "name", None)
    if not name:
        return None
    try:
        data_dir = gin.query_parameter(f"{name}.data_dir")
    except ValueError:
        return None
    if not isinstance(data_dir, (str, os.PathLike)) or not str(data_dir):
        return None
    data_dir = str(data_dir)
    return os.path.abspath(data_dir) if "://" not in data_dir else data_dir


def data_identity(data_dir):
    """``dvdgan_tf.data.pipeline.dataset_identity``: the absolute location and the SHA-256 of dataset.json.
    Raises DataError (with the preparation commands) when data_dir holds no prepared data: statistics cannot be
    matched to data that cannot be identified."""
    import gin  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.data.pipeline import dataset_identity  # pylint: disable=import-outside-toplevel
    try:
        resolution = gin.query_parameter("%RESOLUTION")
    except ValueError:
        resolution = None
    return dataset_identity(data_dir, resolution if isinstance(resolution, int) else None)


def config_dataset_key(config_text, dataset_fn, training, seed):
    """The real-statistics dataset key of ``dataset_fn`` under the gin configuration ``config_text`` (the fully
    resolved ``gin.config_str()``; ``dataset_fn``'s data_dir is read from the current gin config): see the
    module docstring. Used by dvdgan-eval and by the training-time MetricsMonitor."""
    data_dir = dataset_data_dir(dataset_fn)
    data = data_identity(data_dir) if data_dir else None
    blob = json.dumps({"config": config_text, "data": data, "training": bool(training), "seed": int(seed)},
                      sort_keys=True, default=str)
    digest = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]
    return f"config:{digest}" + (f":data:{data_dir}" if data_dir else "")


def gin_source(batch_size, training=True, seed=0):
    """(make, dataset_key) of the current gin configuration's dataset (parsed by the caller): make(num_frames,
    resolution, num_classes) builds it.

    training=True reads the training data (the paper's real statistics come from the training set).
    """
    import gin  # pylint: disable=import-outside-toplevel
    fn = gin_dataset_fn()
    key = config_dataset_key(gin.config_str(), fn, training, seed)

    def make(num_frames, resolution, num_classes):
        return fn(batch_size=batch_size, num_frames=num_frames, resolution=resolution, num_classes=num_classes,
                  training=training, seed=seed)

    return make, key


class NpzBatches:
    """Iterable of batches [b, T, H, W, 3] of an in-memory video array; ``clip_shape`` is (T, H, W, 3), so the
    clips can be checked against a generator before (and without) reading them."""

    def __init__(self, videos, batch_size, path):
        self.videos, self.batch_size, self.path = videos, batch_size, path
        self.clip_shape = tuple(videos.shape[1:])

    def __iter__(self):
        return (self.videos[i:i + self.batch_size] for i in range(0, len(self.videos), self.batch_size))


_SAVE_HINT = "save the clips with np.savez(path, videos=clips), clips a uint8 array [N, T, H, W, 3]"


def npz_batches(path, batch_size=16, key=None):
    """Batches of uint8 videos [b, T, H, W, 3] from an .npz file (array ``key``, or its only array).

    Returns (NpzBatches, dataset_key): the key names the file by absolute path, size and modification time.
    Raises DataError naming the problem for a missing file, a file that is no .npz (an .npy, a pickle, text),
    an object array, or an array that is not RGB videos.
    """
    remote = "://" in str(path)  # gs://, ram://: read through tf.io.gfile (TensorFlow loads now)
    if remote:
        import io  # pylint: disable=import-outside-toplevel
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
            raise DataError(f"--real_npz file {path} does not exist.")
        with tf.io.gfile.GFile(path, "rb") as f:
            content = f.read()
        magic, source = content[:6], io.BytesIO(content)
    else:
        if not os.path.isfile(path):
            raise DataError(f"--real_npz file {path} does not exist.")
        with open(path, "rb") as f:
            magic = f.read(6)
        source = path
    if magic == b"\x93NUMPY":
        raise DataError(f"--real_npz file {path} is a single .npy array, not an .npz archive: {_SAVE_HINT}.")
    if not magic.startswith(b"PK"):
        raise DataError(f"--real_npz file {path} is not an .npz file (a NumPy zip archive; this file starts with "
                        f"{magic!r}): {_SAVE_HINT}.")
    try:
        with np.load(source, allow_pickle=False) as f:
            keys = f.files
            if key is None:
                if len(keys) != 1 and "videos" not in keys:
                    raise DataError(f"{path} holds arrays {keys}; name the one with the videos (--real_npz_key) "
                                    f"or call it 'videos'.")
                key = "videos" if "videos" in keys else keys[0]
            if key not in keys:
                raise DataError(f"{path} has no array {key!r} (has {keys}).")
            try:
                videos = f[key]
            except ValueError as e:
                if "allow_pickle" in str(e) or "bject arrays" in str(e):
                    raise DataError(f"{path}:{key} is an object array (Python objects, which are not loaded: they "
                                    f"could run code); {_SAVE_HINT}.") from e
                raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        if isinstance(e, DataError):
            raise
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"--real_npz file {path} is not a readable .npz ({reason}): {_SAVE_HINT}.") from e
    if videos.dtype == object or not (videos.dtype == np.uint8 or np.issubdtype(videos.dtype, np.floating)):
        raise DataError(f"{path}:{key} has dtype {videos.dtype}; expected uint8 videos (0..255) or floats in "
                        f"[-1, 1].")
    if videos.ndim != 5 or videos.shape[-1] != 3:
        raise DataError(f"{path}:{key} must be videos [N, T, H, W, 3], got shape {list(videos.shape)}.")
    if remote:
        stat = tf.io.gfile.stat(path)
        dataset_key = f"npz:{path}:{key}:{stat.length}:{stat.mtime_nsec}"
    else:
        stat = os.stat(path)
        dataset_key = f"npz:{os.path.abspath(path)}:{key}:{stat.st_size}:{stat.st_mtime_ns}"
    return NpzBatches(videos, batch_size, path), dataset_key
