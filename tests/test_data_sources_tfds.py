"""Reading an already prepared TFDS video dataset (offline): fake ucf101- and bair_robot_pushing_small-shaped
datasets are built here with the same feature layout (a `video` + ClassLabel `label`; a Sequence of steps with
`image_aux1`), then read by name + data_dir and by directory, as the real ones would be."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from dvdgan_tf.data.sources.tfds import TfdsSource
from dvdgan_tf.errors import DataError

CLASSES = ["ApplyEyeMakeup", "Basketball", "YoYo"]


def _ucf_video(seed):
    return np.random.default_rng(seed).integers(0, 256, (5 + seed % 3, 24, 32, 3), dtype=np.uint8)


class DvdganFakeUcf101(tfds.core.GeneratorBasedBuilder):
    """ucf101's features (video of 256x256 frames there, 24x32 here; 101 labels there, 3 here)."""
    VERSION = tfds.core.Version("2.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "video": tfds.features.Video((None, 24, 32, 3)), "label": tfds.features.ClassLabel(names=CLASSES)}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(range(5)), "test": self._generate_examples(range(10, 12))}

    def _generate_examples(self, seeds):  # pylint: disable=arguments-differ
        for seed in seeds:
            yield seed, {"video": _ucf_video(seed), "label": seed % 3}


def _bair_steps(seed):
    rng = np.random.default_rng(seed)
    return {"image_aux1": rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8),
            "image_main": rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8),
            "action": np.zeros((8, 4), np.float32)}


class DvdganFakeBair(tfds.core.GeneratorBasedBuilder):
    """bair_robot_pushing_small's features (30 steps of 64x64 there, 8 of 16x16 here)."""
    VERSION = tfds.core.Version("2.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.Sequence({
            "image_aux1": tfds.features.Image(shape=(16, 16, 3)), "image_main": tfds.features.Image(shape=(16, 16, 3)),
            "action": tfds.features.Tensor(shape=(4,), dtype=np.float32)}, length=8))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(range(3))}

    def _generate_examples(self, seeds):  # pylint: disable=arguments-differ
        for seed in seeds:
            yield seed, _bair_steps(seed)


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    for builder in (DvdganFakeUcf101, DvdganFakeBair):
        builder(data_dir=data_dir).download_and_prepare()
    return data_dir


def _read_all(source, listing, short_side):
    return [item for shards in listing.shards.values() for shard in shards for unit in shard
            for item in source.read(unit, short_side, 0)]


def test_ucf101_shaped_dataset_by_name_and_data_dir(tfds_dir):
    source = TfdsSource("dvdgan_fake_ucf101", tfds_dir)
    listing = source.listing(videos_per_shard=2)
    assert listing.class_names == CLASSES
    assert {s: [len(shard) for shard in shards] for s, shards in listing.shards.items()} == {
        "train": [1, 1, 1], "test": [1]}  # one slice unit per shard: train[0:2], [2:4], [4:5]
    videos = _read_all(source, listing, 24)
    assert len(videos) == 7 and len({v.source for v in videos}) == 7
    expected = {seed: (_ucf_video(seed), seed % 3) for seed in (*range(5), 10, 11)}
    for video in videos:  # TFDS stores examples in its own order: match each to a generated one
        matches = [s for s, (frames, label) in expected.items()
                   if frames.shape == video.frames.shape and np.array_equal(frames, video.frames)]
        assert len(matches) == 1 and video.label == expected[matches[0]][1]
        del expected[matches[0]]
    assert not expected


def test_bair_shaped_dataset_by_directory(tfds_dir):
    source = TfdsSource(dataset_dir=f"{tfds_dir}/dvdgan_fake_bair/2.0.0")
    listing = source.listing(videos_per_shard=64)
    assert listing.class_names == ["dvdgan_fake_bair"] and list(listing.shards) == ["train"]
    videos = _read_all(source, listing, 8)
    assert len(videos) == 3 and all(v.label == 0 and v.frames.shape == (8, 8, 8, 3) for v in videos)
    full = sorted((v for v in _read_all(source, listing, 16)), key=lambda v: v.frames.sum())
    raw = sorted((_bair_steps(s)["image_aux1"] for s in range(3)), key=lambda f: f.sum())
    for video, frames in zip(full, raw):
        np.testing.assert_array_equal(video.frames, frames)


def test_unprepared_or_unknown_datasets_raise_data_error(tfds_dir, tmp_path):
    with pytest.raises(DataError, match="not prepared"):
        TfdsSource("dvdgan_fake_ucf101", str(tmp_path)).listing(4)
    with pytest.raises(DataError, match="dataset_info.json"):
        TfdsSource(dataset_dir=str(tmp_path)).listing(4)
    with pytest.raises(DataError, match="no feature 'frames'"):
        TfdsSource("dvdgan_fake_ucf101", tfds_dir, video_key="frames").listing(4)
