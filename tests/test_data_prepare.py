"""Preparation end to end: bad inputs counted and skipped, stored frames equal decoded-and-resized frames,
interrupted runs resume without losing or duplicating videos, settings changes refused."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from data_video_fixtures import decode_reference, make_kinetics, make_ucf101, write_garbage
from dvdgan_tf.data import prepare
from dvdgan_tf.data import records
from dvdgan_tf.data.sources.kinetics import KineticsSource
from dvdgan_tf.data.sources.ucf101 import UCF101Source
from dvdgan_tf.errors import DataError
from dvdgan_tf.io import files

OPTIONS = prepare.Options(resolution=16, frame_format="png", min_frames=8, videos_per_shard=2)


def read_prepared(output_dir):
    """{source: (split, label, frames uint8 [T, H, W, 3], fps)} of every video in the published shards, read
    with plain TF (not the pipeline); fails on a source written twice."""
    meta = json.loads(open(os.path.join(output_dir, records.METADATA_FILE), encoding="utf-8").read())
    videos = {}
    for split, info in meta["splits"].items():
        for shard in info["shards"]:
            for record in tf.data.TFRecordDataset(os.path.join(output_dir, shard["file"])):
                f = tf.train.Example.FromString(record.numpy()).features.feature
                source = f["source"].bytes_list.value[0].decode()
                assert source not in videos, f"{source} written twice"
                frames = np.stack([tf.io.decode_image(b).numpy() for b in f["frames"].bytes_list.value])
                videos[source] = (split, f["label"].int64_list.value[0], frames, f["fps"].float_list.value[0])
    return videos


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    return make_ucf101(str(tmp_path_factory.mktemp("ucf")))


@pytest.fixture(scope="module")
def ucf_prepared(ucf, tmp_path_factory):
    video_dir, splits_dir, good = ucf
    out = str(tmp_path_factory.mktemp("prepared"))
    summary = prepare.prepare(UCF101Source(video_dir, splits_dir), out, OPTIONS, show_progress=False)
    return out, summary


def test_bad_inputs_are_counted_listed_and_skipped(ucf_prepared):
    out, summary = ucf_prepared
    assert summary.videos == {"train": 4, "test": 2}
    assert summary.skipped == {"unreadable": 1, "too_short": 1, "unknown_label": 1, "missing": 1, "empty_folder": 1}
    tsv = [line.split("\t") for line in open(os.path.join(out, records.SKIPPED_FILE), encoding="utf-8")]
    assert {(row[0], row[1]) for row in tsv} == {
        ("unreadable", "Basketball/v_Basketball_g09_c01.avi"),
        ("too_short", "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi"),
        ("unknown_label", "Bowling/v_Bowling_g08_c01.avi"), ("missing", "Basketball/v_Basketball_g07_c01.avi"),
        ("empty_folder", "YoYo")}
    assert "5 frames, fewer than --min_frames=8" in "".join(row[2] for row in tsv)
    text = summary.text()
    assert "train 4 videos" in text and "1 too_short" in text and "skipped.tsv" in text


def test_prepared_frames_equal_decoded_and_resized_frames(ucf, ucf_prepared):
    video_dir, _, good = ucf
    out, _ = ucf_prepared
    videos = read_prepared(out)
    assert set(videos) == set(good)
    for rel, (split, label, frames, fps) in videos.items():
        assert (split, label) == (good[rel][1], good[rel][0])
        reference = decode_reference(os.path.join(video_dir, rel), 16, 21)  # 40x30 -> short side 16: 21.33 -> 21
        np.testing.assert_array_equal(frames, reference)
        assert fps == pytest.approx(25.0)


def test_metadata_and_class_index(ucf_prepared):
    out, _ = ucf_prepared
    meta = records.read_metadata(out)
    assert meta["num_classes"] == 3 and meta["resolution"] == 16 and meta["frame_format"] == "png"
    assert meta["splits"]["train"]["frame_counts"] == {"14": 4}
    assert sum(s["num_videos"] for s in meta["splits"]["train"]["shards"]) == 4
    assert records.read_class_index(out) == ["ApplyEyeMakeup", "Basketball", "YoYo"]
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # no temporary left


class Interrupt(Exception):
    pass


def test_interrupted_preparation_resumes_keeping_complete_shards(ucf, tmp_path):
    video_dir, splits_dir, good = ucf
    source, out = UCF101Source(video_dir, splits_dir), str(tmp_path / "out")
    options = prepare.Options(resolution=16, frame_format="png", min_frames=8, videos_per_shard=1)
    done = []

    def interrupt_after_three(name):
        done.append(name)
        if len(done) == 3:
            raise Interrupt()

    with pytest.raises(Interrupt):
        prepare.prepare(source, out, options, on_shard_done=interrupt_after_three, show_progress=False)
    assert not os.path.exists(os.path.join(out, records.METADATA_FILE))  # training cannot read it yet
    first = {n: os.stat(os.path.join(out, n + ".tfrecord")) for n in done}
    # A shard being written when the process died leaves only a temporary file: it must not survive.
    # (Named as io/files names its temporaries; ".tmp-..." as earlier versions did.)
    open(os.path.join(out, f".{done[-1]}x.tfrecord{files.TMP_MARK}0123456789ab"), "wb").close()
    open(os.path.join(out, f".tmp-{done[-1]}x.tfrecord-999"), "wb").close()

    resumed = []
    summary = prepare.prepare(source, out, options, on_shard_done=resumed.append, show_progress=False)
    assert summary.shards_kept == 3 and summary.shards_written == 5 and not set(resumed) & set(done)
    for name, stat in first.items():  # complete shards kept as they were
        now = os.stat(os.path.join(out, name + ".tfrecord"))
        assert (now.st_ino, now.st_mtime_ns, now.st_size) == (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    videos = read_prepared(out)  # fails on duplicates
    assert set(videos) == set(good)
    assert summary.skipped["unreadable"] == 1 and summary.videos == {"train": 4, "test": 2}
    assert not [n for n in os.listdir(out) if n.startswith(".")]

    again = prepare.prepare(source, out, options, show_progress=False)  # nothing left to do
    assert again.shards_written == 0 and again.shards_kept == 8


def test_other_settings_in_the_same_directory_are_refused(ucf, ucf_prepared, tmp_path):
    video_dir, splits_dir, _ = ucf
    out, _ = ucf_prepared
    with pytest.raises(DataError, match="other inputs or settings.*options.*--overwrite"):
        prepare.prepare(UCF101Source(video_dir, splits_dir), out,
                        prepare.Options(resolution=8, frame_format="png", min_frames=8, videos_per_shard=2),
                        show_progress=False)


def test_overwrite_starts_again(ucf, tmp_path):
    video_dir, splits_dir, good = ucf
    out = str(tmp_path / "out")
    source = UCF101Source(video_dir, splits_dir)
    prepare.prepare(source, out, prepare.Options(8, min_frames=8, videos_per_shard=4), splits=["test"],
                    show_progress=False)
    (tmp_path / "out" / "keep.txt").write_text("not ours")
    summary = prepare.prepare(source, out, OPTIONS, overwrite=True, show_progress=False)
    assert summary.shards_kept == 0 and records.read_metadata(out)["resolution"] == 16
    assert (tmp_path / "out" / "keep.txt").exists()
    assert set(read_prepared(out)) == set(good)


def test_splits_can_be_chosen(ucf, tmp_path):
    video_dir, splits_dir, good = ucf
    source = UCF101Source(video_dir, splits_dir)
    summary = prepare.prepare(source, str(tmp_path), OPTIONS, splits=["test"], show_progress=False)
    assert summary.videos == {"test": 2}
    with pytest.raises(DataError, match=r"split\(s\) \['validation'\] not in the source"):
        prepare.prepare(source, str(tmp_path / "x"), OPTIONS, splits=["validation"], show_progress=False)


def test_nothing_usable_raises_data_error_without_metadata(tmp_path):
    for name in ("a/x.mp4", "a/y.avi", "b/z.mp4"):
        write_garbage(str(tmp_path / "videos" / name))
    out = str(tmp_path / "out")
    with pytest.raises(DataError, match="nothing usable was written"):
        prepare.prepare(KineticsSource(str(tmp_path / "videos")), out, OPTIONS, show_progress=False)
    assert not os.path.exists(os.path.join(out, records.METADATA_FILE))
    assert len(open(os.path.join(out, records.SKIPPED_FILE), encoding="utf-8").readlines()) == 3


def test_kinetics_release_layout_with_a_real_clip_and_max_frames(tmp_path):
    video_dir, ann_dir, good = make_kinetics(str(tmp_path / "k"))
    out = str(tmp_path / "out")
    options = prepare.Options(resolution=24, frame_format="png", min_frames=8, max_frames=40, videos_per_shard=3)
    summary = prepare.prepare(KineticsSource(video_dir, ann_dir), out, options, show_progress=False)
    assert summary.videos == {"train": 4, "val": 1}
    assert summary.skipped == {"missing": 1, "unknown_label": 1, "unlabelled": 1}
    videos = read_prepared(out)
    by_id = {os.path.basename(src).split("_0")[0].replace(".mp4", ""): v for src, v in videos.items()}
    assert {k: (v[1], v[0]) for k, v in by_id.items()} == good
    real = by_id["realclip001"][2]  # carphone_pristine.mp4: 120 frames of 176x144, capped at 40
    assert real.shape == (40, 24, 29, 3)
    reference = decode_reference(os.path.join(video_dir, "air drumming", "realclip001_000000_000010.mp4"), 24, 29)
    np.testing.assert_array_equal(real, reference[:40])
    assert records.read_metadata(out)["splits"]["train"]["frame_counts"] == {"14": 3, "40": 1}


def test_two_worker_processes_write_the_same_data(ucf, ucf_prepared, tmp_path):
    video_dir, splits_dir, _ = ucf
    out = str(tmp_path / "out")
    summary = prepare.prepare(UCF101Source(video_dir, splits_dir), out, OPTIONS, workers=2, show_progress=False)
    assert summary.shards_written == 4
    one, two = read_prepared(ucf_prepared[0]), read_prepared(out)
    assert one.keys() == two.keys()
    for key in one:
        np.testing.assert_array_equal(one[key][2], two[key][2])
    # Byte for byte, although other processes wrote them (examples are serialised with map entries in key
    # order, not in an order that depends on the process's hash seed):
    for name in os.listdir(out):
        if name.endswith(".tfrecord"):
            with open(os.path.join(out, name), "rb") as a, open(os.path.join(ucf_prepared[0], name), "rb") as b:
                assert a.read() == b.read(), name
