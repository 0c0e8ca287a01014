"""The tf.data pipeline over prepared data: exact clips in evaluation, valid random clips in training,
determinism, per-host sharding, on-the-fly resizing, gin binding and the errors that name their fix."""
import json
import os

import gin
import numpy as np
import pytest
import tensorflow as tf

from data_video_fixtures import decode_reference, prepare_ucf101
from dvdgan_tf.data import pipeline
from dvdgan_tf.data import prepare
from dvdgan_tf.data import records
from dvdgan_tf.data.sources.ucf101 import UCF101Source
from dvdgan_tf.errors import DataError

T, STRIDE, R = 4, 2, 16  # clips of 4 frames every 2nd frame: 7 of the videos' 14 frames


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """UCF-101 layout prepared as PNG at short side 16 (the 40x30 videos become 21x16)."""
    return prepare_ucf101(tmp_path_factory)


def _videos_in_shard_order(out, split):
    """[(source, label)] in the order of the published shards (read with plain TF)."""
    meta = json.loads(open(os.path.join(out, records.METADATA_FILE), encoding="utf-8").read())
    order = []
    for shard in meta["splits"][split]["shards"]:
        for record in tf.data.TFRecordDataset(os.path.join(out, shard["file"])):
            f = tf.train.Example.FromString(record.numpy()).features.feature
            order.append((f["source"].bytes_list.value[0].decode(), f["label"].int64_list.value[0]))
    return order


def _scaled(frames):
    return frames.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def _collect(ds, batches=None):
    videos, labels = [], []
    for video, label in (ds if batches is None else ds.take(batches)):
        videos.append(video.numpy())
        labels.append(label.numpy())
    return np.concatenate(videos), np.concatenate(labels)


def test_evaluation_gives_centred_clips_equal_to_decoded_resized_frames(prepared):
    out, video_dir, _ = prepared
    ds = pipeline.prepared_videos(2, T, R, 3, training=False, data_dir=out, frame_stride=STRIDE)
    assert ds.element_spec[0].shape.as_list() == [2, T, R, R, 3] and ds.element_spec[1].dtype == tf.int32
    videos, labels = _collect(ds)
    assert len(videos) == 4
    unmatched = dict(_videos_in_shard_order(out, "train"))
    for video, label in zip(videos, labels):  # one pass over the 4 videos, each exactly once
        reference = {source: decode_reference(os.path.join(video_dir, source), 16, 21) for source in unmatched}
        start, left = (14 - 7) // 2, (21 - 16) // 2
        matches = [source for source, ref in reference.items()
                   if np.allclose(video, _scaled(ref[start:start + 7:STRIDE, :, left:left + 16]), atol=1e-6)]
        assert len(matches) == 1 and unmatched.pop(matches[0]) == label
    np.testing.assert_array_equal(_collect(ds)[1], labels)  # the same order again
    assert videos.min() >= -1.0 and videos.max() <= 1.0


def test_eval_split_is_read_when_not_training(prepared):
    out, _, good = prepared
    _, labels = _collect(pipeline.prepared_videos(1, T, R, 3, training=False, data_dir=out, frame_stride=STRIDE,
                                                  eval_split="test"))
    assert sorted(labels.tolist()) == sorted(label for label, split in good.values() if split == "test")
    _, labels = _collect(pipeline.prepared_videos(1, T, R, 3, training=False, data_dir=out, frame_stride=STRIDE,
                                                  split="train+test"))
    assert len(labels) == len(good)


def test_frame_stride_one_for_prediction(prepared):
    out, video_dir, _ = prepared
    videos, _ = _collect(pipeline.prepared_videos(1, 11, R, 3, training=False, data_dir=out, split="test"))
    source, _ = _videos_in_shard_order(out, "test")[0]
    reference = decode_reference(os.path.join(video_dir, source), 16, 21)
    np.testing.assert_allclose(videos[0], _scaled(reference[1:12, :, 2:18]), atol=1e-6)  # start (14 - 11) // 2


def test_training_clips_are_random_valid_windows_and_repeat(prepared):
    out, video_dir, good = prepared
    ds = pipeline.prepared_videos(2, T, R, 3, training=True, seed=1, data_dir=out, frame_stride=STRIDE,
                                  deterministic=True)
    videos, labels = _collect(ds, batches=12)  # 24 clips from 4 videos: repeats
    references = {rel: _scaled(decode_reference(os.path.join(video_dir, rel), 16, 21))
                  for rel, (_, split) in good.items() if split == "train"}
    starts, lefts, seen = set(), set(), set()
    for video, label in zip(videos, labels):
        matches = [(rel, s, x) for rel, ref in references.items() for s in range(8) for x in range(6)
                   if np.allclose(video, ref[s:s + 7:STRIDE, :, x:x + 16], atol=1e-6)]
        assert matches, "a training clip is not a strided window of a prepared video"
        rel, s, x = matches[0]
        assert good[rel][0] == label
        starts.add(s), lefts.add(x), seen.add(rel)
    assert len(starts) > 2 and len(lefts) > 2 and seen == set(references)


def test_deterministic_training_repeats_for_a_seed(prepared):
    out, _, _ = prepared

    def first_batches(seed):
        return _collect(pipeline.prepared_videos(2, T, R, 3, training=True, seed=seed, data_dir=out,
                                                 frame_stride=STRIDE), batches=3)

    a, b, c = first_batches(5), first_batches(5), first_batches(6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("split, batch_size", [("train", 2), ("test", 1)])  # 2 shards; 1 shard: by element
def test_input_pipelines_read_disjoint_parts_covering_everything(prepared, split, batch_size):
    out, _, _ = prepared
    everything, _ = _collect(pipeline.prepared_videos(batch_size, T, R, 3, training=False, data_dir=out,
                                                      frame_stride=STRIDE, split=split))
    parts = [_collect(pipeline.prepared_videos(batch_size, T, R, 3, training=False, data_dir=out,
                                               frame_stride=STRIDE, split=split,
                                               input_context=tf.distribute.InputContext(2, i, batch_size)))[0]
             for i in range(2)]
    assert [len(p) for p in parts] == [len(everything) // 2] * 2
    keys = [sorted(v.tobytes() for v in p) for p in parts]
    assert not set(keys[0]) & set(keys[1])
    assert sorted(keys[0] + keys[1]) == sorted(v.tobytes() for v in everything)


def test_larger_prepared_data_is_resized_then_centre_cropped(prepared):
    out, video_dir, _ = prepared
    videos, _ = _collect(pipeline.prepared_videos(2, T, 8, 3, training=False, data_dir=out, frame_stride=STRIDE))
    assert videos.shape == (4, T, 8, 8, 3)
    source, _ = _videos_in_shard_order(out, "train")[0]
    reference = decode_reference(os.path.join(video_dir, source), 16, 21)[3:10:STRIDE].astype(np.float32)
    small = tf.image.resize(reference, (8, 11), method="area").numpy()[:, :, 1:9]  # 21 * 8 / 16 = 10.5 -> 11
    np.testing.assert_allclose(videos[0], small / 127.5 - 1.0, atol=1e-4)
    train = _collect(pipeline.prepared_videos(2, T, 8, 3, training=True, data_dir=out, frame_stride=STRIDE), 2)[0]
    assert train.shape == (4, T, 8, 8, 3)


def test_jpeg_data_through_the_cropping_decoder(prepared, tmp_path):
    _, video_dir, _ = prepared
    splits_dir = os.path.join(os.path.dirname(video_dir), "ucfTrainTestlist")
    out = str(tmp_path)
    prepare.prepare(UCF101Source(video_dir, splits_dir), out,
                    prepare.Options(resolution=16, min_frames=8, videos_per_shard=8), splits=["train"],
                    show_progress=False)
    videos, _ = _collect(pipeline.prepared_videos(4, T, R, 3, training=False, data_dir=out, frame_stride=STRIDE))
    for video, (source, _) in zip(videos, _videos_in_shard_order(out, "train")):
        reference = decode_reference(os.path.join(video_dir, source), 16, 21)
        assert np.abs(video - _scaled(reference[3:10:STRIDE, :, 2:18])).mean() < 3.0 / 127.5


def test_data_stored_every_second_frame_serves_stride_two_only(prepared, tmp_path):
    _, video_dir, _ = prepared
    splits_dir = os.path.join(os.path.dirname(video_dir), "ucfTrainTestlist")
    out = str(tmp_path)
    prepare.prepare(UCF101Source(video_dir, splits_dir), out,
                    prepare.Options(resolution=16, frame_format="png", min_frames=4, videos_per_shard=8,
                                    frame_step=2), splits=["train"], show_progress=False)
    assert records.read_metadata(out)["splits"]["train"]["frame_counts"] == {"7": 4}  # 14 frames, every 2nd
    videos, _ = _collect(pipeline.prepared_videos(4, 3, R, 3, training=False, data_dir=out, frame_stride=2))
    for video, (source, _) in zip(videos, _videos_in_shard_order(out, "train")):
        reference = decode_reference(os.path.join(video_dir, source), 16, 21)
        # 7 stored frames (source 0, 2, ..., 12); a 3-frame clip starts at stored frame (7 - 3) // 2 = 2.
        np.testing.assert_allclose(video, _scaled(reference[4:9:2, :, 2:18]), atol=1e-6)
    with pytest.raises(DataError, match="one frame in 2 .*multiple of 2, not 1.*--frame_step=1"):
        pipeline.prepared_videos(4, 3, R, 3, training=False, data_dir=out, frame_stride=1)


def test_data_dir_is_one_gin_parameter(prepared):
    out, _, _ = prepared
    gin.clear_config()
    try:
        gin.parse_config([f"prepared_videos.data_dir = '{out}'", "prepared_videos.frame_stride = 2"])
        videos, labels = _collect(pipeline.prepared_videos(2, T, R, 3, training=False))
        assert videos.shape == (4, T, R, R, 3) and labels.dtype == np.int32
    finally:
        gin.clear_config()


def test_missing_data_names_the_preparation_commands(tmp_path):
    missing = str(tmp_path / "data" / "ucf101")
    with pytest.raises(DataError) as e:
        pipeline.prepared_videos(2, 16, 128, 101, data_dir=missing)
    message = str(e.value)
    assert "does not exist" in message
    for command in (f"dvdgan-prepare-data --source=ucf101 --video_dir=/path/to/UCF-101 "
                    f"--splits_dir=/path/to/ucfTrainTestlist --output_dir={missing} --resolution=128",
                    "--source=kinetics600", f"--source=bair --video_dir=/path/to/softmotion30_44k "
                    f"--output_dir={missing} --resolution=64", "prepared_videos.data_dir"):
        assert command in message
    with pytest.raises(DataError, match="holds no prepared data"):
        pipeline.prepared_videos(2, 16, 128, 101, data_dir=str(tmp_path))


def test_incomplete_preparation_says_to_resume(tmp_path):
    (tmp_path / records.PLAN_FILE).write_text("{}")
    with pytest.raises(DataError, match="incomplete.*re-run the same dvdgan-prepare-data command"):
        pipeline.prepared_videos(2, 16, 128, 101, data_dir=str(tmp_path))


@pytest.mark.parametrize("kwargs, message", [
    ({"num_classes": 101}, "holds 3 classes but the config has NUM_CLASSES = 101"),
    ({"resolution": 32}, "short side 16 pixels, less than the config's RESOLUTION = 32.*--resolution=32"),
    ({"num_frames": 16}, "0 videos of at least 31 stored frames"),
    ({"split": "val"}, "no videos in split 'val'; it has \\['test', 'train'\\]"),
])
def test_mismatched_config_raises_data_error(prepared, kwargs, message):
    out, _, _ = prepared
    args = {"batch_size": 2, "num_frames": T, "resolution": R, "num_classes": 3, "data_dir": out,
            "frame_stride": STRIDE, **kwargs}
    with pytest.raises(DataError, match=message):
        pipeline.prepared_videos(**args)


def test_class_index_reader_is_exposed(prepared):
    assert pipeline.read_class_index(prepared[0]) == ["ApplyEyeMakeup", "Basketball", "YoYo"]


def _train_stream(out, clips, seed=3, start_example=0, pipelines=1, pipeline_id=0, data_dir=None):
    """The first `clips` training clips (batch 1) of one input pipeline."""
    # one replica per pipeline, batch 1: the global batch is one clip per pipeline
    context = tf.distribute.InputContext(pipelines, pipeline_id, pipelines) if pipelines > 1 else None
    return _collect(pipeline.prepared_videos(1, T, R, 3, training=True, seed=seed, data_dir=data_dir or out,
                                             frame_stride=STRIDE, input_context=context,
                                             start_example=start_example), batches=clips)


def _assert_same(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_training_stream_resumed_at_an_example_equals_the_uninterrupted_stream(prepared):
    """Exact resume: the stream from start_example=k is the stream from 0 without its first k examples; with
    2 input pipelines of one replica each (global batch 2), pipeline i holds the examples i, i + 2, ... of the
    one-pipeline stream (its block of each global batch, data.sharding)."""
    out, _, _ = prepared
    whole = _train_stream(out, 14)  # 14 examples of 4 videos: more than 3 epochs
    for k in (3, 8):
        _assert_same(_train_stream(out, 14 - k, start_example=k), (whole[0][k:], whole[1][k:]))
    for i in range(2):
        part = _train_stream(out, 7, pipelines=2, pipeline_id=i)
        _assert_same(part, (whole[0][i::2], whole[1][i::2]))
        # Resumed at example 4 (after two global batches): pipeline i continues with example 4 + i.
        resumed = _train_stream(out, 5, start_example=4, pipelines=2, pipeline_id=i)
        _assert_same(resumed, (whole[0][4 + i::2][:5], whole[1][4 + i::2][:5]))


def test_training_stream_is_a_function_of_the_seed(prepared):
    out, _, _ = prepared
    _assert_same(_train_stream(out, 6, seed=11), _train_stream(out, 6, seed=11))
    assert not np.array_equal(_train_stream(out, 6, seed=11)[0], _train_stream(out, 6, seed=12)[0])


def test_training_covers_every_video_once_per_epoch_in_a_new_order(prepared):
    out, video_dir, good = prepared
    references = {rel: _scaled(decode_reference(os.path.join(video_dir, rel), 16, 21))
                  for rel, (_, split) in good.items() if split == "train"}

    def source_of(video):
        found = {rel for rel, ref in references.items() for s in range(8) for x in range(6)
                 if np.allclose(video, ref[s:s + 7:STRIDE, :, x:x + 16], atol=1e-6)}
        assert len(found) == 1
        return found.pop()

    videos, _ = _train_stream(out, 16, seed=4)  # 4 epochs of the 4 train videos
    order = [source_of(v) for v in videos]
    epochs = [order[e * 4:(e + 1) * 4] for e in range(4)]
    for epoch in epochs:
        assert sorted(epoch) == sorted(references)  # each video exactly once per epoch
    assert len({tuple(e) for e in epochs}) > 1  # the order is shuffled per epoch


def test_data_prepared_without_record_index_gives_the_same_stream(prepared, tmp_path):
    """Data prepared before preparation stored the record index: the pipeline indexes the shards itself (from
    the record headers; and from every record's frame count when some videos may be too short)."""
    out, _, _ = prepared
    meta = json.loads(open(os.path.join(out, records.METADATA_FILE), encoding="utf-8").read())
    for info in meta["splits"].values():
        for shard in info["shards"]:
            assert len(shard.pop("record_bytes")) == len(shard.pop("record_frames")) == shard["num_videos"]
    old = tmp_path / "old"
    old.mkdir()
    for name in os.listdir(out):
        if name != records.METADATA_FILE:
            os.symlink(os.path.join(out, name), old / name)
    (old / records.METADATA_FILE).write_text(json.dumps(meta))
    expected = _train_stream(out, 6)
    _assert_same(_train_stream(out, 6, data_dir=str(old)), expected)
    meta["splits"]["train"]["frame_counts"]["2"] = 0  # "some videos may be too short": frame counts are read
    (old / records.METADATA_FILE).write_text(json.dumps(meta))
    _assert_same(_train_stream(out, 6, data_dir=str(old)), expected)


def test_record_index_points_at_every_record(prepared):
    out, _, _ = prepared
    meta = records.read_metadata(out)
    paths, file_ids, offsets, lengths = pipeline.record_index(out, meta, ["train", "test"], needed=1)
    expected = [r.numpy() for p in paths for r in tf.data.TFRecordDataset(p)]
    reader = pipeline._RecordReader(paths)  # pylint: disable=protected-access
    assert [reader(f, o, n) for f, o, n in zip(file_ids, offsets, lengths)] == expected
    with pytest.raises(DataError, match="changed after preparation"):
        reader(file_ids[1], offsets[1] + 1, lengths[1])


def test_record_reader_through_gfile_for_remote_paths():
    data = [b"first record", b"second, longer record"]
    path = "ram://dvdgan_test_reader/shard.tfrecord"
    with tf.io.TFRecordWriter(path) as writer:
        for record in data:
            writer.write(record)
    reader = pipeline._RecordReader([path])  # pylint: disable=protected-access
    assert not reader.local
    offset = len(data[0]) + 16  # 8-byte length, 4-byte CRC, data, 4-byte CRC
    assert reader(0, offset, len(data[1])) == data[1] and reader(0, 0, len(data[0])) == data[0]


def test_dataset_identity_names_the_location_and_changes_with_the_content(prepared, tmp_path, monkeypatch):
    out, video_dir, _ = prepared
    identity = pipeline.dataset_identity(out, 16)
    assert identity.startswith(os.path.abspath(out) + "#") and identity == pipeline.dataset_identity(out)
    monkeypatch.chdir(os.path.dirname(out))
    assert pipeline.dataset_identity(os.path.basename(out)) == identity  # relative paths: the same data
    # The same content elsewhere is another location; any change of dataset.json is another identity.
    copy = tmp_path / "copy"
    copy.mkdir()
    meta_text = open(os.path.join(out, records.METADATA_FILE), encoding="utf-8").read()
    (copy / records.METADATA_FILE).write_text(meta_text)
    other = pipeline.dataset_identity(str(copy))
    assert other != identity and other.split("#", 1)[1] == identity.split("#", 1)[1]
    (copy / records.METADATA_FILE).write_text(meta_text.replace('"num_videos"', ' "num_videos"', 1))
    assert pipeline.dataset_identity(str(copy)) != other
    # Preparing the directory again with other settings changes it.
    splits_dir = os.path.join(os.path.dirname(video_dir), "ucfTrainTestlist")
    again = str(tmp_path / "again")
    prepare.prepare(UCF101Source(video_dir, splits_dir), again,
                    prepare.Options(resolution=16, frame_format="png", min_frames=8, videos_per_shard=2),
                    splits=["test"], show_progress=False)
    first = pipeline.dataset_identity(again)
    prepare.prepare(UCF101Source(video_dir, splits_dir), again,
                    prepare.Options(resolution=16, frame_format="png", min_frames=8, videos_per_shard=1),
                    splits=["test"], overwrite=True, show_progress=False)
    assert pipeline.dataset_identity(again) != first
    with pytest.raises(DataError, match="holds no prepared data"):
        pipeline.dataset_identity(str(tmp_path / "nothing"))
