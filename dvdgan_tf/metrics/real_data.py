"""Where dvdgan-eval's real clips come from: a gin config's dataset function, or an .npz of uint8 videos.

Each source comes with a dataset key: a string that identifies the data exactly, under which the real
statistics are cached (``fvd.StatisticsCache``).
"""
import hashlib
import json
import os

import numpy as np

from dvdgan_tf.errors import ConfigError, DataError


def gin_dataset_fn(gin_files, gin_params):
    """Parses the gin config and returns the function bound to ``train.dataset_fn`` (its own bindings applied).

    The function follows the dataset contract: fn(batch_size, num_frames, resolution, num_classes, training=True,
    seed=0, input_context=None) -> tf.data.Dataset of (video [B, T, H, W, 3] in [-1, 1], label [B]).
    """
    import gin  # pylint: disable=import-outside-toplevel
    from dvdgan_tf import config  # pylint: disable=import-outside-toplevel
    config.parse_config(gin_files, gin_params)
    try:
        reference = gin.query_parameter("train.dataset_fn")
    except ValueError as e:
        raise ConfigError(f"the gin config binds no train.dataset_fn ({e}); add e.g. "
                          f"--gin_param='train.dataset_fn = @moving_shapes', or use --real_npz.") from e
    fn = getattr(reference, "scoped_configurable_fn", reference)
    if not callable(fn):
        raise ConfigError(f"train.dataset_fn is bound to {reference!r}, which is not a function.")
    return fn


def gin_dataset_key(gin_files, gin_params, training, seed):
    """Identifies a gin config's real data: the files' contents, the bindings, the split and the seed."""
    digest = hashlib.sha256()
    for path in gin_files:
        with open(path, "rb") as f:
            digest.update(f.read())
    digest.update(json.dumps([list(gin_params), bool(training), seed]).encode("utf-8"))
    return f"gin:{','.join(os.path.basename(p) for p in gin_files)}:{digest.hexdigest()[:20]}"


def gin_source(gin_files, gin_params, batch_size, training=True, seed=0):
    """(make, dataset_key): make(num_frames, resolution, num_classes) builds the config's dataset.

    training=True reads the training data (the paper's real statistics come from the training set).
    """
    from dvdgan_tf import config  # pylint: disable=import-outside-toplevel
    gin_files = [config.resolve_gin_file(f) for f in gin_files]
    fn = gin_dataset_fn(gin_files, gin_params)

    def make(num_frames, resolution, num_classes):
        return fn(batch_size=batch_size, num_frames=num_frames, resolution=resolution, num_classes=num_classes,
                  training=training, seed=seed)

    return make, gin_dataset_key(gin_files, gin_params, training, seed)


def npz_batches(path, batch_size=16, key=None):
    """Batches of uint8 videos [b, T, H, W, 3] from an .npz file (array ``key``, or its only array).

    Returns (iterator, dataset_key): the key names the file by absolute path, size and modification time.
    """
    if not os.path.isfile(path):
        raise DataError(f"--real_npz file {path} does not exist.")
    with np.load(path, allow_pickle=False) as f:
        keys = f.files
        if key is None:
            if len(keys) != 1 and "videos" not in keys:
                raise DataError(f"{path} holds arrays {keys}; name the one with the videos (or call it 'videos').")
            key = "videos" if "videos" in keys else keys[0]
        if key not in keys:
            raise DataError(f"{path} has no array {key!r} (has {keys}).")
        videos = f[key]
    if videos.ndim != 5 or videos.shape[-1] != 3:
        raise DataError(f"{path}:{key} must be videos [N, T, H, W, 3], got shape {list(videos.shape)}.")
    stat = os.stat(path)
    dataset_key = f"npz:{os.path.abspath(path)}:{key}:{stat.st_size}:{stat.st_mtime_ns}"
    return (videos[i:i + batch_size] for i in range(0, len(videos), batch_size)), dataset_key
