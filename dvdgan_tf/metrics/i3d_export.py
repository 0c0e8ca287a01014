"""Writes the Keras I3D as a SavedModel that loads and calls like the TF-Hub module deepmind/i3d-kinetics-400/1.

``hub.load(dir)`` (or ``tf.saved_model.load``) then gives an object with
  - ``m(videos)``: videos float32 [B, T, 224, 224, 3] in [-1, 1] (T >= 9) -> [B, 400] time-averaged logits;
  - ``m.signatures['default'](videos)``: {'default': [B, 400] logits, 'features': [B, 1024] average-pool
    features (mean over time)}; the single input is named 'default' and may also be passed positionally.
Placed at ``$TFHUB_CACHE_DIR/<sha1 of the TF-Hub URL>`` it serves that URL offline (``tfhub_cache_dir_for``).
"""
import os

import tensorflow as tf

from dvdgan_tf.errors import ConfigError
from dvdgan_tf.io import files
from dvdgan_tf.metrics import classifiers
from dvdgan_tf.metrics import i3d as i3d_lib

_SPEC = tf.TensorSpec([None, None, i3d_lib.INPUT_SIZE, i3d_lib.INPUT_SIZE, 3], tf.float32, name="default")


class I3DHubModule(tf.Module):
    """tf.Module around an InceptionI3d (final endpoint 'Logits') with TF-Hub's calling convention.

    Only the variables and the traced functions are saved: the Keras model is held outside tf.Module tracking
    (saving it as a child doubles the saving time and adds nothing a TF-Hub user can call).
    """

    def __init__(self, model):
        super().__init__(name="i3d")
        self._end_points = lambda videos: model(videos)  # not tracked
        self.i3d_variables = list(model.variables)

    @tf.function(input_signature=[_SPEC])
    def __call__(self, videos):
        return self.default_signature(videos)["default"]  # reuses the signature's trace

    @tf.function(input_signature=[_SPEC])
    def default_signature(self, default):  # the argument name is the signature's input name
        end_points = self._end_points(default)
        return {"default": end_points["Logits"], "features": end_points["AvgPool"]}


def export_i3d(out_dir, model=None, overwrite=False):
    """Saves the I3D (default: the real Kinetics-400 one) as a TF-Hub-compatible SavedModel in out_dir.

    Written to a temporary sibling and renamed (``files.publish_dir``), so out_dir is either complete or absent;
    local files get the permissions of the user's umask.
    Raises ConfigError if out_dir exists and is not empty, unless overwrite.
    Returns out_dir.
    """
    if files.is_local(out_dir):
        out_dir = os.path.abspath(out_dir)
    if tf.io.gfile.isdir(out_dir) and tf.io.gfile.listdir(out_dir) and not overwrite:
        raise ConfigError(f"{out_dir} exists and is not empty; choose another --out or pass --overwrite.")
    model = model or classifiers.builtin_i3d_model()
    module = I3DHubModule(model)
    needed = sum(int(tf.size(v)) * tf.as_dtype(v.dtype).size for v in model.variables)
    with files.publish_dir(out_dir, needed_bytes=needed) as tmp:
        tf.saved_model.save(module, tmp, signatures={"default": module.default_signature})
    return out_dir


def export_to_tfhub_cache(model=None, overwrite=False):
    """Exports into ``$TFHUB_CACHE_DIR/<sha1 of TFHUB_I3D_400>``, so ``hub.load(TFHUB_I3D_400)`` works offline.

    Raises ConfigError when $TFHUB_CACHE_DIR is not set. Returns the folder written.
    """
    if not os.environ.get("TFHUB_CACHE_DIR"):
        raise ConfigError("exporting into the TF-Hub cache needs $TFHUB_CACHE_DIR set (tensorflow-hub's cache "
                          "folder), e.g. export TFHUB_CACHE_DIR=~/.cache/tfhub_modules.")
    return export_i3d(classifiers.tfhub_cache_path(classifiers.TFHUB_I3D_400), model=model, overwrite=overwrite)
