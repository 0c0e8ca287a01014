"""C3D fine-tuned on UCF-101, for the UCF-101 Inception Score of TGAN / TGANv2 / DVD-GAN.

The weights are the user's: tgan2's release files ``conv3d_deepnetA_ucf.npz`` (Chainer ``C3DVersion1UCF101``
parameters: ``conv1a/W`` [out, in, 3, 3, 3], ``conv1a/b``, ..., ``fc6/W`` [4096, 8192], ..., ``fc8/b`` [101]) and
``mean2.npz`` (``mean``: [3, 16, 128, 128], BGR mean clip). No package ships them; see ``find_c3d_files``.

TGANv2's preprocessing, reproduced: videos in [-1, 1] with 16 frames; RGB -> BGR; every frame resized to
112 x 112 with corner-aligned bilinear interpolation (Chainer ``resize_images``); then 128 x + 128 - mean, the
mean clip cropped to its central 112 x 112. Network: 3x3x3 convs with bias and ReLU, conv1a 64 -> pool (1,2,2) ->
conv2a 128 -> pool 2 -> conv3a/b 256 -> pool 2 -> conv4a/b 512 -> pool 2 -> conv5a/b 512 -> pool 2 (ceil mode,
7 -> 4) -> flatten in Chainer's (C, T, H, W) order -> fc6 4096 -> fc7 4096 (ReLU; dropout off) -> fc8 101 logits.
"""
import os

import keras
import numpy as np
import tensorflow as tf

from dvdgan_tf.errors import DataError
from dvdgan_tf.io import files
from dvdgan_tf.metrics import preprocess

WEIGHTS_FILE = "conv3d_deepnetA_ucf.npz"
MEAN_FILE = "mean2.npz"
DOWNLOAD_HINT = ("Download tgan2's release files (https://github.com/mitmul/tgan2/releases/download/"
                 "untagged-d2d4900c6c1bb09d9f5a/conv3d_deepnetA_ucf.npz and .../mean2.npz, as tgan2's README "
                 "describes) and pass their paths (dvdgan-eval --c3d_weights=... --c3d_mean=...), or put both "
                 "in <cache root>/c3d (the cache root: $DVDGAN_CACHE_DIR, else $XDG_CACHE_HOME/dvdgan_tf, else "
                 "~/.cache/dvdgan_tf).")
NUM_FRAMES = 16
INPUT_SIZE = 112
CONV_NAMES = ("conv1a", "conv2a", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")
CONV_WIDTHS = (64, 128, 256, 256, 512, 512, 512, 512)
POOL_AFTER = {"conv1a": (1, 2, 2), "conv2a": (2, 2, 2), "conv3b": (2, 2, 2), "conv4b": (2, 2, 2),
              "conv5b": (2, 2, 2)}


class C3D(keras.Model):
    """C3D on preprocessed clips [B, 16, 112, 112, 3] (BGR, mean subtracted) -> logits [B, num_classes].

    conv_widths / fc_width are the real network's by default; smaller ones only serve tests.
    """

    def __init__(self, num_classes=101, conv_widths=CONV_WIDTHS, fc_width=4096, name="c3d", **kwargs):
        super().__init__(name=name, **kwargs)
        self.convs = [keras.layers.Conv3D(w, 3, padding="same", activation="relu", name=n)
                      for n, w in zip(CONV_NAMES, conv_widths)]
        self.fcs = [keras.layers.Dense(fc_width, activation="relu", name="fc6"),
                    keras.layers.Dense(fc_width, activation="relu", name="fc7"),
                    keras.layers.Dense(num_classes, name="fc8")]

    def call(self, clips):
        x = clips
        for conv in self.convs:
            x = conv(x)
            if conv.name in POOL_AFTER:
                window = (1, *POOL_AFTER[conv.name], 1)
                x = tf.nn.max_pool3d(x, ksize=window, strides=window, padding="SAME")  # SAME = Chainer cover_all
        x = tf.transpose(x, [0, 4, 1, 2, 3])  # NDHWC -> NCDHW, Chainer's flattening order
        x = tf.reshape(x, [tf.shape(x)[0], -1])
        for fc in self.fcs:
            x = fc(x)
        return x


def find_c3d_files(weights_path=None, mean_path=None):
    """Resolves the two tgan2 files (explicit paths, else ``files.cache_root()``/c3d).

    Raises DataError naming where they were looked for and how to get them.
    """
    root = files.cache_root()
    weights_path = weights_path or os.path.join(root, "c3d", WEIGHTS_FILE)
    mean_path = mean_path or os.path.join(root, "c3d", MEAN_FILE)
    missing = [p for p in (weights_path, mean_path) if not os.path.isfile(p)]
    if missing:
        raise DataError(f"the UCF-101 Inception Score needs the C3D files, not found: {', '.join(missing)}. "
                        f"{DOWNLOAD_HINT}")
    return weights_path, mean_path


def _load_npz(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path}: {e}. {DOWNLOAD_HINT}") from e


def _param(params, layer, kind):
    """Finds '<layer>/<kind>' allowing a path prefix (e.g. 'predictor/conv1a/W')."""
    for key, value in params.items():
        if key == f"{layer}/{kind}" or key.endswith(f"/{layer}/{kind}"):
            return value
    raise DataError(f"the C3D weights have no {layer}/{kind} (keys: {sorted(params)[:6]}...). Expected tgan2's "
                    f"{WEIGHTS_FILE}.")


def assign_chainer_weights(model, params):
    """Copies Chainer C3D parameters ({name: array}) into a built C3D."""
    for conv in model.convs:
        w = _param(params, conv.name, "W")  # [out, in, kT, kH, kW]
        conv.set_weights([np.transpose(w, (2, 3, 4, 1, 0)), _param(params, conv.name, "b")])
    for fc in model.fcs:
        w = _param(params, fc.name, "W")  # [out, in]
        fc.set_weights([np.transpose(w), _param(params, fc.name, "b")])


def mean_clip(mean):
    """tgan2's mean [3, 16, 128, 128] (BGR) -> its central crop as [16, 112, 112, 3] float32."""
    mean = np.asarray(mean, np.float32)
    if mean.ndim != 4 or mean.shape[:2] != (3, NUM_FRAMES) or min(mean.shape[2:]) < INPUT_SIZE + 8:
        raise DataError(f"the C3D mean clip must be [3, 16, 128, 128], got {list(mean.shape)}. Expected tgan2's "
                        f"{MEAN_FILE}.")
    return np.transpose(mean[:, :, 8:8 + INPUT_SIZE, 8:8 + INPUT_SIZE], (1, 2, 3, 0))


def c3d_input(videos, mean):
    """uint8 / [-1, 1] videos [B, 16, H, W, 3] (RGB) -> C3D input [B, 16, 112, 112, 3] (BGR, 0..256 - mean).

    mean: [16, 112, 112, 3] from ``mean_clip``.
    """
    videos = preprocess.check_videos(videos)
    if videos.shape[1] != NUM_FRAMES:
        raise DataError(f"the C3D Inception Score is defined on {NUM_FRAMES}-frame clips, got {videos.shape[1]}.")
    return c3d_input_tensor(videos, mean)


def c3d_input_tensor(videos, mean):
    """``c3d_input`` without its eager checks (the caller does them first): traceable, e.g. inside
    ``strategy.run``."""
    x = preprocess.to_0_255(videos) / 127.5 - 1.0  # [-1, 1]
    x = preprocess.resize_frames_tf1(x[..., ::-1], INPUT_SIZE, align_corners=True)
    return 128.0 * x + 128.0 - mean


class C3DClassifier:
    """``logits(videos)`` -> [B, 101] float32 ndarray for uint8 / [-1, 1] RGB videos [B, 16, H, W, 3]."""

    def __init__(self, model, mean, identity, batch_size=8):
        self.model, self.mean, self.identity, self.batch_size = model, tf.constant(mean), identity, batch_size
        self._run = tf.function(lambda x: self.model(x))

    def logits(self, videos):
        x = c3d_input(videos, self.mean)
        return np.concatenate([self._run(x[i:i + self.batch_size]).numpy()
                               for i in range(0, int(x.shape[0]), self.batch_size)])


def load_c3d(weights_path=None, mean_path=None, batch_size=8):
    """The UCF-101 C3D from tgan2's files (see ``find_c3d_files``); DataError when they are missing or wrong."""
    weights_path, mean_path = find_c3d_files(weights_path, mean_path)
    params = _load_npz(weights_path)
    mean_npz = _load_npz(mean_path)
    if "mean" not in mean_npz:
        raise DataError(f"{mean_path} has no 'mean' array (has {sorted(mean_npz)}). Expected tgan2's {MEAN_FILE}.")
    # Sizes come from the file (the real one gives the published C3D; tests use narrow ones).
    model = C3D(num_classes=_param(params, "fc8", "b").shape[0],
                conv_widths=tuple(_param(params, n, "b").shape[0] for n in CONV_NAMES),
                fc_width=_param(params, "fc6", "b").shape[0])
    model(keras.Input(shape=(NUM_FRAMES, INPUT_SIZE, INPUT_SIZE, 3), batch_size=1))
    try:
        assign_chainer_weights(model, params)
    except ValueError as e:
        raise DataError(f"{weights_path} does not fit the C3D architecture: {e}") from e
    identity = f"c3d-ucf101:{os.path.basename(weights_path)}:{os.path.getsize(weights_path)}"
    return C3DClassifier(model, mean_clip(mean_npz["mean"]), identity, batch_size)
