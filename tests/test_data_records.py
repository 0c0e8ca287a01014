"""The prepared-data format: example encoding, class index file, atomic writes, metadata checks."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.data import records
from dvdgan_tf.errors import DataError


def _frames(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (3, 8, 10, 3), dtype=np.uint8)


def test_png_example_round_trips_exactly():
    frames = _frames()
    example = tf.train.Example.FromString(records.video_example(frames, 7, "a/b.avi", 25.0, "png"))
    feature = example.features.feature
    assert feature["label"].int64_list.value == [7]
    assert feature["num_frames"].int64_list.value == [3]
    assert (feature["height"].int64_list.value[0], feature["width"].int64_list.value[0]) == (8, 10)
    assert feature["fps"].float_list.value[0] == 25.0
    assert feature["source"].bytes_list.value[0] == b"a/b.avi"
    encoded = feature["frames"].bytes_list.value
    assert len(encoded) == 3 and all(e.startswith(b"\x89PNG") for e in encoded)
    decoded = np.stack([tf.io.decode_png(e).numpy() for e in encoded])
    np.testing.assert_array_equal(decoded, frames)


def test_jpeg_example_is_close_and_parses_with_the_feature_spec():
    y, x = np.mgrid[0:32, 0:40]
    frames = np.stack([np.stack([x * 5, y * 6, (x + y) * 3], -1)] * 2).astype(np.uint8)  # smooth content
    parsed = tf.io.parse_single_example(records.video_example(frames, 1, "s", 0.0, "jpeg", 90),
                                        records.feature_spec())
    encoded = tf.sparse.to_dense(parsed["frames"]).numpy()
    assert all(e.startswith(b"\xff\xd8") for e in encoded)
    decoded = np.stack([tf.io.decode_jpeg(e).numpy() for e in encoded]).astype(np.float32)
    assert np.abs(decoded - frames).mean() < 3.0
    assert int(parsed["num_frames"]) == 2 and int(parsed["label"]) == 1


def test_unknown_frame_format_is_refused():
    with pytest.raises(ValueError, match="frame_format"):
        records.encode_frames(_frames(), "gif")


def test_class_index_round_trip_with_spaces(tmp_path):
    names = ["abseiling", "air drumming", "zumba"]
    (tmp_path / records.CLASS_INDEX_FILE).write_text(records.class_index_text(names))
    assert (tmp_path / records.CLASS_INDEX_FILE).read_text().splitlines()[1] == "1 air drumming"
    assert records.read_class_index(str(tmp_path)) == names


@pytest.mark.parametrize("text", ["0 a\n2 b\n", "a\n", "0 a\nx b\n", "1 a\n"])
def test_malformed_class_index_raises_data_error_with_line(tmp_path, text):
    (tmp_path / records.CLASS_INDEX_FILE).write_text(text)
    with pytest.raises(DataError, match="line"):
        records.read_class_index(str(tmp_path))


def test_missing_class_index_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="dvdgan-prepare-data"):
        records.read_class_index(str(tmp_path))


def test_records_file_appears_only_when_complete(tmp_path):
    path = str(tmp_path / "s.tfrecord")

    def failing():
        yield b"one"
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        records.write_records_atomic(path, failing())
    assert os.listdir(tmp_path) == []  # neither the file nor its temporary
    records.write_records_atomic(path, iter([b"one", b"two"]))
    assert [r.numpy() for r in tf.data.TFRecordDataset(path)] == [b"one", b"two"]
    assert os.listdir(tmp_path) == ["s.tfrecord"]


def test_json_write_is_atomic_and_replaces(tmp_path):
    path = str(tmp_path / "x.json")
    records.write_json_atomic(path, {"a": 1})
    records.write_json_atomic(path, {"a": 2})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 2}
    with pytest.raises(TypeError):
        records.write_json_atomic(path, {"a": object()})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 2}
    assert os.listdir(tmp_path) == ["x.json"]


def test_metadata_of_another_version_is_refused(tmp_path):
    assert records.read_metadata(str(tmp_path)) is None
    (tmp_path / records.METADATA_FILE).write_text(json.dumps({"format": records.FORMAT_NAME, "version": 99}))
    with pytest.raises(DataError, match="version 99"):
        records.read_metadata(str(tmp_path))
    (tmp_path / records.METADATA_FILE).write_text("{not json")
    with pytest.raises(DataError, match="cannot read"):
        records.read_metadata(str(tmp_path))
