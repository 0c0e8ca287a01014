"""Preparation as an Apache Beam pipeline (DirectRunner, in-process): every source gives what the local runner
(worker processes) gives, bad inputs included; a re-run rewrites only missing shards; Beam is optional."""
import json
import os
import sys

import pytest

from data_video_fixtures import make_kinetics, make_ucf101, write_garbage
from test_data_prepare import read_prepared
from test_data_sources_bair import _write_bair_file
from test_data_sources_tfds import DvdganFakeUcf101
from dvdgan_tf.data import prepare
from dvdgan_tf.data import records
from dvdgan_tf.data.sources.bair import BairSource
from dvdgan_tf.data.sources.kinetics import KineticsSource
from dvdgan_tf.data.sources.tfds import TfdsSource
from dvdgan_tf.data.sources.ucf101 import UCF101Source
from dvdgan_tf.errors import DataError

pytest.importorskip("apache_beam", reason="apache-beam is a test dependency (the beam extra)")

OPTIONS = prepare.Options(resolution=16, frame_format="png", min_frames=4, videos_per_shard=2)


def _sources(root):
    """name -> a source over a small collection with bad inputs (see the fixtures' docstrings)."""
    ucf_videos, ucf_splits, _ = make_ucf101(os.path.join(root, "ucf"))
    k_videos, k_annotations, _ = make_kinetics(os.path.join(root, "k600"))
    write_garbage(os.path.join(k_videos, "zumba", "notavideo_000000_000010.mp4"))  # in no CSV: class folders only
    bair = os.path.join(root, "softmotion30_44k")
    _write_bair_file(os.path.join(bair, "train", "traj_0_to_2.tfrecords"), [0, 1, 2])
    _write_bair_file(os.path.join(bair, "test", "traj_0_to_1.tfrecords"), [10, 11])
    with open(os.path.join(bair, "train", "traj_3_to_4.tfrecords"), "wb") as f:
        f.write(b"\x07" * 40)  # not a TFRecord file: skipped as unreadable
    tfds_data = os.path.join(root, "tfds")
    DvdganFakeUcf101(data_dir=tfds_data).download_and_prepare()
    return {"ucf101": UCF101Source(ucf_videos, ucf_splits),
            "kinetics600_csv": KineticsSource(k_videos, k_annotations),
            "kinetics600_folders": KineticsSource(k_videos),
            "bair": BairSource(bair),
            "tfds": TfdsSource("dvdgan_fake_ucf101", tfds_data)}


@pytest.fixture(scope="module")
def collections(tmp_path_factory):
    return _sources(str(tmp_path_factory.mktemp("raw")))


def _meta(output_dir):
    with open(os.path.join(output_dir, records.METADATA_FILE), encoding="utf-8") as f:
        meta = json.load(f)
    meta.pop("created")
    return meta


def _read(output_dir, name):
    with open(os.path.join(output_dir, name), encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("name", ["ucf101", "kinetics600_csv", "kinetics600_folders", "bair", "tfds"])
def test_direct_runner_writes_what_the_local_runner_writes(collections, name, tmp_path):
    source = collections[name]
    local, beam = str(tmp_path / "local"), str(tmp_path / "beam")
    prepare.prepare(source, local, OPTIONS, workers=1, show_progress=False)
    summary = prepare.prepare(source, beam, OPTIONS, show_progress=False, runner="direct")
    assert summary.shards_written > 0
    # The same counts, shard lists (with record indexes), histograms and skipped inputs:
    assert _meta(beam) == _meta(local)
    assert _read(beam, records.SKIPPED_FILE) == _read(local, records.SKIPPED_FILE)
    if name != "tfds":  # the fake TFDS dataset has no bad inputs
        assert _read(local, records.SKIPPED_FILE).strip(), "the collection should hold bad inputs"
    # and, for every video, the same stored frames, label and shard (shard files are byte-identical):
    one, two = read_prepared(local), read_prepared(beam)
    assert one.keys() == two.keys() and one
    for key, (split, label, frames, fps) in one.items():
        assert two[key][:2] == (split, label) and two[key][3] == fps
        assert (two[key][2] == frames).all()
    for shard in os.listdir(local):
        if shard.endswith(".tfrecord"):
            with open(os.path.join(local, shard), "rb") as a, open(os.path.join(beam, shard), "rb") as b:
                assert a.read() == b.read(), shard
    assert not [n for n in os.listdir(beam) if n.startswith(".")], "the pipeline's plan file is left behind"


def _stat(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


def test_rerun_after_deleting_one_shard_rewrites_only_that_shard(collections, tmp_path):
    source, out = collections["ucf101"], str(tmp_path / "beam")
    prepare.prepare(source, out, OPTIONS, show_progress=False, runner="direct")
    shards = sorted(n for n in os.listdir(out) if n.endswith((".tfrecord", ".json")) and n[0] in "tv")
    assert len(shards) >= 6
    before = {n: _stat(os.path.join(out, n)) for n in shards}
    original = open(os.path.join(out, "train-00001-of-00003.tfrecord"), "rb").read()
    os.remove(os.path.join(out, "train-00001-of-00003.tfrecord"))
    summary = prepare.prepare(source, out, OPTIONS, show_progress=False, runner="direct")
    assert (summary.shards_written, summary.shards_kept) == (1, len(shards) // 2 - 1)
    after = {n: _stat(os.path.join(out, n)) for n in shards}
    changed = sorted(n for n in shards if after[n] != before[n])
    assert changed == ["train-00001-of-00003.json", "train-00001-of-00003.tfrecord"]
    assert open(os.path.join(out, "train-00001-of-00003.tfrecord"), "rb").read() == original


def test_a_runner_without_beam_names_the_extra(collections, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import apache_beam now raises ImportError
    with pytest.raises(DataError, match=r'pip install "dvdgan_tf\[beam\]"'):
        prepare.prepare(collections["ucf101"], str(tmp_path / "out"), OPTIONS, show_progress=False, runner="direct")
    assert not os.path.exists(str(tmp_path / "out")), "nothing should be written before the runner is usable"


def test_dataflow_refuses_a_local_output_folder_before_anything_runs(collections, tmp_path):
    with pytest.raises(DataError, match="use a gs:// folder"):
        prepare.prepare(collections["ucf101"], str(tmp_path / "out"), OPTIONS, show_progress=False,
                        runner="dataflow", pipeline_args=["--project=p"])
    assert not os.path.exists(tmp_path / "out")


def test_runner_options_need_a_runner_and_the_dash_form(collections, tmp_path):
    with pytest.raises(DataError, match="without --runner"):
        prepare.prepare(collections["ucf101"], str(tmp_path / "a"), OPTIONS, pipeline_args=["--project=p"])
    with pytest.raises(DataError, match="--name=value"):
        prepare.prepare(collections["ucf101"], str(tmp_path / "b"), OPTIONS, runner="direct",
                        pipeline_args=["project=p"])


def test_beam_prepares_to_remote_storage_and_training_reads_it_there(collections, tmp_path):
    """Output through tf.io.gfile: the pipeline writes to ram:// (standing in for gs://; in-process, so the
    DirectRunner's one in-memory worker), and prepared_videos reads the clips back from there, in training
    (random access by record index) and in evaluation; they equal the clips of a local preparation."""
    import numpy as np
    import tensorflow as tf
    from dvdgan_tf.data import pipeline

    source, remote, local = collections["ucf101"], f"ram://beam_out_{os.getpid()}/ucf", str(tmp_path / "local")
    prepare.prepare(source, remote, OPTIONS, show_progress=False, runner="direct")
    prepare.prepare(source, local, OPTIONS, show_progress=False)
    assert tf.io.gfile.exists(remote + "/" + records.METADATA_FILE)
    assert pipeline.read_class_index(remote) == pipeline.read_class_index(local)
    for training in (True, False):
        clips = [next(iter(pipeline.prepared_videos(2, 4, 16, 3, training=training, seed=3, data_dir=d)))
                 for d in (remote, local)]
        np.testing.assert_array_equal(clips[0][0].numpy(), clips[1][0].numpy())
        np.testing.assert_array_equal(clips[0][1].numpy(), clips[1][1].numpy())


class _FailingSource(UCF101Source):
    """UCF-101 whose reads fail with an error that is not a bad input (e.g. a lost connection)."""

    def read(self, unit, short_side, max_frames):
        raise RuntimeError("connection to the storage lost")


def test_a_failing_pipeline_is_one_line_and_keeps_nothing_partial(collections, tmp_path):
    good = collections["ucf101"]
    source, out = _FailingSource(good.video_dir, good.splits_dir), str(tmp_path / "out")
    with pytest.raises(DataError, match=r"the direct pipeline failed \(.*connection to the storage lost.*\).*"
                                        r"re-run the same command") as raised:
        prepare.prepare(source, out, OPTIONS, show_progress=False, runner="direct")
    assert "\n" not in str(raised.value)
    assert not [n for n in os.listdir(out) if n.endswith((".tfrecord", ".json")) and n[0] in "tv" or n[0] == "."]
    assert not os.path.exists(os.path.join(out, records.METADATA_FILE))
