"""BAIR robot pushing from its original TFRecords (raw 64x64 RGB strings per step)."""
import os

import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.data.sources import common as sources
from dvdgan_tf.data.sources.bair import BairSource
from dvdgan_tf.errors import DataError

STEPS = 6


def _trajectory(seed):
    rng = np.random.default_rng(seed)
    return {view: rng.integers(0, 256, (STEPS, 64, 64, 3), dtype=np.uint8) for view in ("image_aux1", "image_main")}


def _write_bair_file(path, seeds):
    """A softmotion30_44k-style file: per step i, {i}/image_aux1/encoded, {i}/image_main/encoded (raw bytes),
    {i}/action and {i}/endeffector_pos."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for seed in seeds:
            traj, feature = _trajectory(seed), {}
            for i in range(STEPS):
                for view, frames in traj.items():
                    feature[f"{i}/{view}/encoded"] = tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[frames[i].tobytes()]))
                feature[f"{i}/action"] = tf.train.Feature(float_list=tf.train.FloatList(value=[0.1] * 4))
                feature[f"{i}/endeffector_pos"] = tf.train.Feature(float_list=tf.train.FloatList(value=[0.2] * 3))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


@pytest.fixture(scope="module")
def bair_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("softmotion30_44k")
    _write_bair_file(str(root / "train" / "traj_0_to_2.tfrecords"), [0, 1, 2])
    _write_bair_file(str(root / "train" / "traj_3_to_4.tfrecords"), [3, 4])
    _write_bair_file(str(root / "test" / "traj_0_to_1.tfrecords"), [10, 11])
    return str(root)


def test_listing_has_one_shard_per_file(bair_dir):
    listing = BairSource(bair_dir).listing(64)
    assert listing.class_names == ["robot_pushing"]
    assert {s: [[u.key for u in shard] for shard in shards] for s, shards in listing.shards.items()} == {
        "train": [["train/traj_0_to_2.tfrecords"], ["train/traj_3_to_4.tfrecords"]],
        "test": [["test/traj_0_to_1.tfrecords"]]}


@pytest.mark.parametrize("view", ["image_aux1", "image_main"])
def test_read_gives_the_raw_frames_of_the_chosen_view(bair_dir, view):
    source = BairSource(bair_dir, view)
    videos = list(source.read(sources.Unit("train", "train/traj_0_to_2.tfrecords", 0), 64, 0))
    assert [v.source for v in videos] == [f"train/traj_0_to_2.tfrecords#{i}" for i in range(3)]
    for seed, video in enumerate(videos):
        np.testing.assert_array_equal(video.frames, _trajectory(seed)[view])
        assert video.label == 0


def test_read_resizes_to_the_short_side(bair_dir):
    (video, *_) = BairSource(bair_dir).read(sources.Unit("test", "test/traj_0_to_1.tfrecords", 0), 32, 4)
    raw = _trajectory(10)["image_aux1"][:4].astype(np.float32)
    block_mean = raw.reshape(4, 32, 2, 32, 2, 3).mean((2, 4))
    assert video.frames.shape == (4, 32, 32, 3)
    assert np.abs(video.frames - block_mean).max() <= 1.0


def test_a_cut_file_keeps_its_complete_records_and_skips_the_rest(bair_dir, tmp_path):
    with open(os.path.join(bair_dir, "train", "traj_0_to_2.tfrecords"), "rb") as f:
        data = f.read()
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "cut.tfrecords").write_bytes(data[: int(len(data) * 0.8)])  # third record cut
    items = list(BairSource(str(tmp_path)).read(sources.Unit("train", "train/cut.tfrecords", 0), 64, 0))
    assert [type(i).__name__ for i in items] == ["Video", "Video", "Skip"]
    assert items[2].reason == sources.UNREADABLE and items[2].source == "train/cut.tfrecords#2"


def test_empty_folder_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="softmotion30_44k"):
        BairSource(str(tmp_path)).listing(4)
