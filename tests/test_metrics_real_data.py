"""Real-data sources of dvdgan-eval: an .npz of uint8 videos, or the dataset function a gin config binds, and
the dataset key the real statistics are cached under."""
import json
import os
import pickle

import numpy as np
import pytest

from dvdgan_tf import config
from dvdgan_tf.errors import ConfigError, DataError
from dvdgan_tf.metrics import real_data


def gin_source(gin_files, gin_params, *args, **kwargs):
    """The real data of a gin config as dvdgan-eval gets it: parse, then the current config's source."""
    config.parse_config(gin_files, gin_params)
    return real_data.gin_source(*args, **kwargs)


def test_npz_batches(tmp_path):
    videos = np.random.default_rng(0).integers(0, 256, (5, 9, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "real.npz", videos=videos, other=np.zeros(2))
    batches, key = real_data.npz_batches(str(tmp_path / "real.npz"), batch_size=2)
    np.testing.assert_array_equal(np.concatenate(list(batches)), videos)
    assert key.startswith("npz:") and "real.npz:videos:" in key
    np.savez(tmp_path / "two.npz", a=videos, b=videos)
    with pytest.raises(DataError, match="name the one with the videos"):
        real_data.npz_batches(str(tmp_path / "two.npz"))
    np.savez(tmp_path / "flat.npz", videos=np.zeros((5, 8, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"\[N, T, H, W, 3\]"):
        real_data.npz_batches(str(tmp_path / "flat.npz"))
    with pytest.raises(DataError, match="does not exist"):
        real_data.npz_batches(str(tmp_path / "none.npz"))


def test_gin_dataset_function_is_called_with_the_generator_shape():
    make, key = gin_source(["gin/demo.gin"], [], batch_size=2, training=True, seed=0)
    video, label = next(iter(make(num_frames=9, resolution=16, num_classes=4)))
    assert video.shape == (2, 9, 16, 16, 3) and label.shape == (2,)
    assert -1.0 <= float(np.min(video)) and float(np.max(video)) <= 1.0
    assert key.startswith("config:") and ":data:" not in key  # the embedded data: no files
    assert gin_source(["gin/demo.gin"], [], 2, training=False, seed=0)[1] != key
    assert gin_source(["gin/demo.gin"], ["moving_shapes.eval_examples = 8"], 2, seed=0)[1] != key
    with pytest.raises(ConfigError, match="binds no train.dataset_fn"):
        gin_source(["gin/base.gin"], ["NUM_CLASSES = 3", "NUM_FRAMES = 9", "RESOLUTION = 16"], 2)


def test_npz_that_is_not_an_npz_or_holds_objects_is_named(tmp_path):
    videos = np.zeros((2, 9, 8, 8, 3), np.uint8)
    np.save(tmp_path / "clips.npy", videos)
    with pytest.raises(DataError, match=r"single \.npy array, not an \.npz archive: save the clips with np\.savez"):
        real_data.npz_batches(str(tmp_path / "clips.npy"))
    (tmp_path / "clips.pkl").write_bytes(pickle.dumps(videos))
    (tmp_path / "notes.txt").write_text("not videos")
    for name in ("clips.pkl", "notes.txt"):
        with pytest.raises(DataError, match=r"is not an \.npz file \(a NumPy zip archive"):
            real_data.npz_batches(str(tmp_path / name))
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04" + b"\0" * 40)  # zip magic, no archive behind it
    with pytest.raises(DataError, match=r"is not a readable \.npz"):
        real_data.npz_batches(str(tmp_path / "broken.npz"))
    objects = np.empty((2,), dtype=object)
    objects[:] = [videos[0], videos[1]]
    np.savez(tmp_path / "objects.npz", videos=objects)
    with pytest.raises(DataError, match=r"objects\.npz:videos is an object array"):
        real_data.npz_batches(str(tmp_path / "objects.npz"))
    np.savez(tmp_path / "strings.npz", videos=np.full((2, 9, 8, 8, 3), "x"))
    with pytest.raises(DataError, match="has dtype <U1; expected uint8"):
        real_data.npz_batches(str(tmp_path / "strings.npz"))


def write_gin(folder, name, text):
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


MAIN_GIN = """include 'included.gin'
NUM_CLASSES = 3
NUM_FRAMES = 9
RESOLUTION = 16
train.dataset_fn = @moving_shapes
"""


def test_key_changes_when_an_included_file_changes(tmp_path):
    """Like base.gin included by ucf101.gin: the named file is unchanged, the included one is edited."""
    main = write_gin(tmp_path, "main.gin", MAIN_GIN)
    write_gin(tmp_path, "included.gin", "moving_shapes.eval_examples = 64\n")
    key = gin_source([main], [], 2, training=True, seed=0)[1]
    assert gin_source([main], [], 2, training=True, seed=0)[1] == key  # nothing changed: same key
    write_gin(tmp_path, "included.gin", "moving_shapes.eval_examples = 32\n")
    assert gin_source([main], [], 2, training=True, seed=0)[1] != key


def prepared_gin(folder, data_dir):
    return write_gin(folder, "prepared.gin", MAIN_GIN.replace("@moving_shapes", "@prepared_videos").replace(
        "include 'included.gin'\n", "") + f"prepared_videos.data_dir = {data_dir!r}\n")


def write_dataset_json(data_dir, num_videos):
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "dataset.json"), "w", encoding="utf-8") as f:
        json.dump({"num_classes": 3, "splits": {"train": {"num_videos": num_videos}}}, f)


def test_key_changes_when_the_prepared_data_is_prepared_again(tmp_path):
    data_dir = str(tmp_path / "data")
    write_dataset_json(data_dir, 10)
    gin_file = prepared_gin(tmp_path, data_dir)
    key = gin_source([gin_file], [], 2, seed=0)[1]
    assert key.endswith(f":data:{data_dir}")
    write_dataset_json(data_dir, 12)  # re-prepared: same folder, same config, other contents
    assert gin_source([gin_file], [], 2, seed=0)[1] != key
    write_dataset_json(data_dir, 10)  # back to the first contents: the first key again
    assert gin_source([gin_file], [], 2, seed=0)[1] == key


def test_relative_data_dir_from_two_working_directories_gives_two_keys(tmp_path, monkeypatch):
    """The same gin text (data_dir 'data', relative) seen from two folders that hold equal dataset.json files:
    different data, so different keys."""
    for run in ("a", "b"):
        write_dataset_json(str(tmp_path / run / "data"), 10)
    gin_file = prepared_gin(tmp_path, "data")
    keys = {}
    for run in ("a", "b"):
        monkeypatch.chdir(tmp_path / run)
        keys[run] = gin_source([gin_file], [], 2, seed=0)[1]
        assert keys[run].endswith(f":data:{tmp_path / run / 'data'}")
    assert keys["a"] != keys["b"]


def test_training_monitor_uses_the_same_key_and_sees_re_prepared_data(tmp_path):
    """MetricsMonitor (training) keys its statistics with the same function: rewriting dataset.json between two
    evaluations changes its key."""
    import gin
    from dvdgan_tf import config
    from dvdgan_tf.data.pipeline import prepared_videos
    from dvdgan_tf.training.monitors import MetricsMonitor
    data_dir = str(tmp_path / "data")
    write_dataset_json(data_dir, 10)
    config.parse_config([prepared_gin(tmp_path, data_dir)])
    text = gin.config_str()
    monitor = MetricsMonitor(None, prepared_videos, str(tmp_path / "run"), ["isucf10x1"], text, seed=3)
    first = monitor.dataset_key()
    assert first.endswith(f":data:{data_dir}")
    assert first == real_data.config_dataset_key(text, prepared_videos, training=False, seed=3)
    write_dataset_json(data_dir, 11)
    assert monitor.dataset_key() != first


def test_prepared_data_that_is_missing_cannot_be_keyed(tmp_path):
    """No dataset.json: no identity, so no statistics (cached or not) can be matched to it."""
    gin_file = prepared_gin(tmp_path, str(tmp_path / "nothing"))
    with pytest.raises(DataError, match="(?s)holds no prepared data .*dvdgan-prepare-data .*--resolution=16"):
        gin_source([gin_file], [], 2, seed=0)


def test_npz_batches_on_a_remote_file_system():
    """--real_npz on gs:// is read through tf.io.gfile (ram:// stands in), keyed by its path, size and time."""
    import io
    import tensorflow as tf
    videos = np.random.default_rng(1).integers(0, 256, (3, 4, 8, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, videos=videos)
    path = "ram://real-data-test/real.npz"
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buffer.getvalue())
    try:
        batches, key = real_data.npz_batches(path, batch_size=2)
        np.testing.assert_array_equal(np.concatenate(list(batches)), videos)
        assert key.startswith(f"npz:{path}:videos:{len(buffer.getvalue())}:")
        with pytest.raises(DataError, match="does not exist"):
            real_data.npz_batches("ram://real-data-test/none.npz")
        with tf.io.gfile.GFile("ram://real-data-test/clips.npy", "wb") as f:
            f.write(b"\x93NUMPY rest")
        with pytest.raises(DataError, match="single .npy array"):
            real_data.npz_batches("ram://real-data-test/clips.npy")
    finally:
        for name in tf.io.gfile.glob("ram://real-data-test/*"):
            tf.io.gfile.remove(name)
