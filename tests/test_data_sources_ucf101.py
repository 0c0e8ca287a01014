"""UCF-101 as released: class folders of .avi files and the official split lists."""
import pytest

from data_video_fixtures import make_ucf101
from dvdgan_tf.data.sources import common as sources
from dvdgan_tf.data.sources.ucf101 import UCF101Source
from dvdgan_tf.errors import DataError


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    return make_ucf101(str(tmp_path_factory.mktemp("ucf")))


def test_listing_follows_the_official_lists(ucf):
    video_dir, splits_dir, good = ucf
    listing = UCF101Source(video_dir, splits_dir, 1).listing(videos_per_shard=3)
    assert listing.class_names == ["ApplyEyeMakeup", "Basketball", "YoYo"]
    units = {split: [u for shard in shards for u in shard] for split, shards in listing.shards.items()}
    assert [len(s) for s in listing.shards["train"]] == [3, 3]  # 4 good + corrupt + too short, 3 per shard
    listed = {u.key: (u.label, u.split) for split_units in units.values() for u in split_units}
    bad = {"Basketball/v_Basketball_g09_c01.avi": (1, "train"), "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi":
           (0, "train")}  # decoded later: corrupt, too short
    assert listed == {**good, **bad}
    reasons = {(s.reason, s.source) for s in listing.skipped}
    assert reasons == {(sources.EMPTY_FOLDER, "YoYo"), (sources.UNKNOWN_LABEL, "Bowling/v_Bowling_g08_c01.avi"),
                       (sources.MISSING, "Basketball/v_Basketball_g07_c01.avi")}


def test_read_yields_the_video_or_a_skip(ucf):
    video_dir, splits_dir, _ = ucf
    source = UCF101Source(video_dir, splits_dir)
    (video,) = source.read(sources.Unit("train", "Basketball/v_Basketball_g02_c01.avi", 1), 16, 0)
    assert video.label == 1 and video.frames.shape == (14, 16, 21, 3) and video.fps == pytest.approx(25)
    (skip,) = source.read(sources.Unit("train", "Basketball/v_Basketball_g09_c01.avi", 1), 16, 0)
    assert isinstance(skip, sources.Skip) and skip.reason == sources.UNREADABLE


def test_missing_lists_and_bad_split_index_raise_data_error(ucf, tmp_path):
    video_dir, splits_dir, _ = ucf
    with pytest.raises(DataError, match="trainlist02.txt not found"):
        UCF101Source(video_dir, splits_dir, 2).listing(4)
    with pytest.raises(DataError, match="splits 1, 2 and 3"):
        UCF101Source(video_dir, splits_dir, 4).listing(4)
    with pytest.raises(DataError, match="classInd.txt not found.*--splits_dir"):
        UCF101Source(video_dir, str(tmp_path), 1).listing(4)
