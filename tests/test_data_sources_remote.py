"""Raw inputs on remote storage (gs:// for Dataflow; TensorFlow's in-memory ram:// stands in for it here): the
same small collections prepared from a local folder and from a ram:// copy of it give the same videos, labels,
classes and skip list; missing remote inputs get the local error messages. ram:// lives in this process only,
so preparation runs in-process (workers=1)."""
import json
import os
import uuid

import numpy as np
import pytest
import tensorflow as tf

from data_video_fixtures import make_kinetics, make_ucf101
from dvdgan_tf.data import prepare
from dvdgan_tf.data import records
from dvdgan_tf.data.sources import common as sources
from dvdgan_tf.data.sources.bair import BairSource
from dvdgan_tf.data.sources.kinetics import KineticsSource
from dvdgan_tf.data.sources.tfds import TfdsSource
from dvdgan_tf.data.sources.ucf101 import UCF101Source
from dvdgan_tf.errors import DataError

OPTIONS = prepare.Options(resolution=16, frame_format="png", min_frames=8, max_frames=20, videos_per_shard=2)


@pytest.fixture
def ram():
    """A fresh ram:// folder, deleted afterwards."""
    root = f"ram://remote-{uuid.uuid4().hex[:8]}"
    tf.io.gfile.makedirs(root)
    yield root
    tf.io.gfile.rmtree(root)


def copy_to(local_root, remote_root):
    """Copies the tree under `local_root` (following file symlinks) to `remote_root`, byte for byte."""
    for folder, _, names in os.walk(local_root):
        target = remote_root + folder[len(local_root):].replace(os.sep, "/")
        tf.io.gfile.makedirs(target)
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                data = f.read()
            with tf.io.gfile.GFile(f"{target}/{name}", "wb") as f:
                f.write(data)


def read_prepared(output_dir):
    """(class names, skipped.tsv rows, {source: (split, label, fps, frames uint8 [T, H, W, 3])}) of a prepared
    folder, read with plain TF."""
    with open(os.path.join(output_dir, records.METADATA_FILE), encoding="utf-8") as f:
        meta = json.load(f)
    videos = {}
    for split, info in meta["splits"].items():
        for shard in info["shards"]:
            for record in tf.data.TFRecordDataset(os.path.join(output_dir, shard["file"])):
                f = tf.train.Example.FromString(record.numpy()).features.feature
                frames = np.stack([tf.io.decode_image(b).numpy() for b in f["frames"].bytes_list.value])
                videos[f["source"].bytes_list.value[0].decode()] = (
                    split, f["label"].int64_list.value[0], round(f["fps"].float_list.value[0], 3), frames)
    with open(os.path.join(output_dir, records.CLASS_INDEX_FILE), encoding="utf-8") as f:
        classes = f.read()
    with open(os.path.join(output_dir, records.SKIPPED_FILE), encoding="utf-8") as f:
        skipped = sorted(f.read().splitlines())
    return classes, skipped, videos


def assert_same_preparation(local_source, remote_source, tmp_path):
    """Prepares both sources into local folders and checks that they stored the same data; returns it."""
    prepared = []
    for name, source in (("local", local_source), ("remote", remote_source)):
        prepare.prepare(source, str(tmp_path / name), OPTIONS, workers=1, show_progress=False)
        prepared.append(read_prepared(str(tmp_path / name)))
    (classes, skipped, videos), (remote_classes, remote_skipped, remote_videos) = prepared
    assert remote_classes == classes and remote_skipped == skipped
    assert sorted(remote_videos) == sorted(videos)
    for key, (split, label, fps, frames) in videos.items():
        assert remote_videos[key][:3] == (split, label, fps), key
        np.testing.assert_array_equal(remote_videos[key][3], frames, err_msg=key)
    return prepared[0]


def test_ucf101_from_ram_prepares_the_same_videos_as_from_a_local_folder(tmp_path, ram):
    video_dir, splits_dir, good = make_ucf101(str(tmp_path / "ucf"), num_frames=10)
    copy_to(str(tmp_path / "ucf"), ram)
    remote = UCF101Source(f"{ram}/UCF-101/", f"{ram}/ucfTrainTestlist")
    assert remote.settings()["video_dir"] == f"{ram}/UCF-101"  # not made absolute like a local path
    _, skipped, videos = assert_same_preparation(UCF101Source(video_dir, splits_dir), remote, tmp_path)
    assert {k: v[:2] for k, v in videos.items()} == {k: (s, label) for k, (label, s) in good.items()}
    assert [row.split("\t")[:2] for row in skipped] == [  # sorted rows: reason, source
        ["empty_folder", "YoYo"], ["missing", "Basketball/v_Basketball_g07_c01.avi"],
        ["too_short", "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi"],
        ["unknown_label", "Bowling/v_Bowling_g08_c01.avi"], ["unreadable", "Basketball/v_Basketball_g09_c01.avi"]]


@pytest.mark.parametrize("with_csv", [True, False], ids=["csv", "class_folders"])
def test_kinetics_from_ram_prepares_the_same_videos_as_from_a_local_folder(tmp_path, ram, with_csv):
    video_dir, ann_dir, good = make_kinetics(str(tmp_path / "k"), num_frames=10, height=16, width=24)
    copy_to(str(tmp_path / "k"), ram)
    local = KineticsSource(video_dir, ann_dir if with_csv else None)
    remote = KineticsSource(f"{ram}/clips", f"{ram}/annotations" if with_csv else None)
    _, skipped, videos = assert_same_preparation(local, remote, tmp_path)
    if with_csv:
        ids = {os.path.basename(k).split("_0")[0].replace(".mp4", ""): v[:2] for k, v in videos.items()}
        assert ids == {k: (s, label) for k, (label, s) in good.items()}
        assert sorted(row.split("\t")[0] for row in skipped) == ["missing", "unknown_label", "unlabelled"]
    else:  # class folders abseiling, air drumming, ice fishing, unlabelled, zumba: every clip is a video
        assert len(videos) == 7 and not skipped


def test_bair_file_from_ram_gives_its_raw_frames(ram):
    rng = np.random.default_rng(0)
    trajectories = [rng.integers(0, 256, (4, 64, 64, 3), dtype=np.uint8) for _ in range(2)]
    tf.io.gfile.makedirs(f"{ram}/train")
    with tf.io.TFRecordWriter(f"{ram}/train/traj_0_to_1.tfrecords") as writer:
        for frames in trajectories:
            feature = {f"{i}/image_aux1/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[frame.tobytes()])) for i, frame in enumerate(frames)}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    source = BairSource(ram + "/")
    listing = source.listing(64)
    assert listing.shards == {"train": [[sources.Unit("train", "train/traj_0_to_1.tfrecords", 0)]]}
    videos = list(source.read(listing.shards["train"][0][0], 64, 0))
    assert [v.source for v in videos] == ["train/traj_0_to_1.tfrecords#0", "train/traj_0_to_1.tfrecords#1"]
    for video, frames in zip(videos, trajectories):
        np.testing.assert_array_equal(video.frames, frames)


def _message(error_info, root):
    return str(error_info.value).replace(root, "ROOT")


def test_missing_remote_inputs_raise_the_messages_of_missing_local_ones(tmp_path, ram):
    local = str(tmp_path)
    for make in (lambda root: UCF101Source(f"{root}/UCF-101", f"{root}/lists"),
                 lambda root: KineticsSource(f"{root}/clips"),
                 lambda root: KineticsSource(root, f"{root}/annotations"),
                 lambda root: BairSource(f"{root}/softmotion30_44k"),
                 lambda root: TfdsSource(dataset_dir=f"{root}/ucf101/2.0.0")):
        with pytest.raises(DataError) as local_error:
            make(local).listing(4)
        with pytest.raises(DataError) as remote_error:
            make(ram).listing(4)
        assert _message(remote_error, ram) == _message(local_error, local)
        assert "\n" not in str(remote_error.value) and "ROOT" in _message(remote_error, ram)


def test_remote_listing_takes_names_ending_in_a_slash_for_folders_without_asking(monkeypatch):
    """Object stores (gs://) list folders as 'name/': the walk must not ask isdir for those, nor for video
    files (one request per clip would make listing Kinetics take hours); other names are asked."""
    tree = {"gs://b/v": ["train/", "readme"], "gs://b/v/train": ["a.mp4", "x/"], "gs://b/v/train/x": ["c.avi"]}
    asked = []
    monkeypatch.setattr(tf.io.gfile, "listdir", lambda path: tree[path.rstrip("/")])
    monkeypatch.setattr(tf.io.gfile, "isdir", lambda path: asked.append(path) or False)
    walked = [(folder, sorted(dirs), sorted(names)) for folder, dirs, names in sources.walk("gs://b/v")]
    assert walked == [("gs://b/v", ["train"], ["readme"]), ("gs://b/v/train", ["x"], ["a.mp4"]),
                      ("gs://b/v/train/x", [], ["c.avi"])]
    assert asked == ["gs://b/v/readme"]
    assert sources.subdirs("gs://b/v/train") == ["x"] and sources.listdir("gs://b/v") == ["train", "readme"]
