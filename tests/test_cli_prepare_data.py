"""The dvdgan-prepare-data binary: summary and exit 0 when videos were written, a clean error and exit 2 when
nothing usable was, or when arguments are missing."""
import json
import os
import subprocess
import sys

from data_video_fixtures import pattern_frames, write_garbage, write_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_prepare(*args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "dvdgan_tf.cli.prepare_data", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_prepares_class_folders_and_reports(tmp_path):
    for rel, seed in (("running/a.mp4", 0), ("running/b.avi", 1), ("jumping/c.mp4", 2)):
        write_video(str(tmp_path / "videos" / rel), pattern_frames(10, 16, 24, seed))
    write_garbage(str(tmp_path / "videos" / "jumping" / "broken.mp4"))
    out = tmp_path / "out"
    result = run_prepare("--source=kinetics600", f"--video_dir={tmp_path / 'videos'}", f"--output_dir={out}",
                         "--resolution=8", "--min_frames=4", "--workers=1")
    assert result.returncode == 0, result.stderr
    assert "train 3 videos" in result.stdout and "1 unreadable" in result.stdout
    assert "skipped jumping/broken.mp4 (unreadable)" in result.stderr
    assert "preparing kinetics600" in result.stderr  # the progress bar
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["num_classes"] == 2 and meta["resolution"] == 8
    assert (out / "classes.txt").read_text() == "0 jumping\n1 running\n"


def test_nothing_usable_exits_2_without_traceback(tmp_path):
    write_garbage(str(tmp_path / "videos" / "a" / "x.mp4"))
    result = run_prepare("--source=kinetics600", f"--video_dir={tmp_path / 'videos'}",
                         f"--output_dir={tmp_path / 'out'}", "--resolution=8", "--noprogress", "--workers=1")
    assert result.returncode == 2
    assert "dvdgan-prepare-data: error:" in result.stderr and "nothing usable was written" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_source_arguments_exit_2(tmp_path):
    result = run_prepare("--source=ucf101", f"--video_dir={tmp_path}", f"--output_dir={tmp_path / 'o'}",
                         "--resolution=128")
    assert result.returncode == 2 and "--source=ucf101 needs --splits_dir" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_prepare("--source=bair", f"--output_dir={tmp_path / 'o'}")
    assert result.returncode != 0 and "--resolution is required" in result.stderr


def test_file_names_that_are_not_utf8_are_skipped_and_listed_escaped(tmp_path):
    videos = tmp_path / "videos"
    write_video(str(videos / "running" / "a.mp4"), pattern_frames(10, 16, 24, 0))
    write_video(str(videos / "jumping" / "c.mp4"), pattern_frames(10, 16, 24, 2))
    # The same kind of video under names holding the byte 0xff, which is not valid UTF-8: a file, and a class
    # folder (a class name must be written to classes.txt).
    bad_file = os.fsencode(str(videos / "running")) + b"/bad\xff.mp4"
    bad_class = os.fsencode(str(videos)) + b"/sp\xffin"
    os.makedirs(bad_class)
    for path in (bad_file, bad_class + b"/d.mp4"):
        with open(str(videos / "jumping" / "c.mp4"), "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())
    out = tmp_path / "out"
    result = run_prepare("--source=kinetics600", f"--video_dir={videos}", f"--output_dir={out}",
                         "--resolution=8", "--min_frames=4", "--workers=1", "--noprogress")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "train 2 videos" in result.stdout and "2 undecodable_name" in result.stdout
    # skipped.tsv is UTF-8 text; the bad byte is written as the four characters \xff.
    rows = [line.split("\t") for line in (out / "skipped.tsv").read_text(encoding="utf-8").splitlines()]
    assert {(r[0], r[1]) for r in rows} == {("undecodable_name", "running/bad\\xff.mp4"),
                                            ("undecodable_name", "sp\\xffin")}
    assert "skipped running/bad\\xff.mp4 (undecodable_name)" in result.stderr
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["splits"]["train"]["num_videos"] == 2 and meta["skipped"] == {"undecodable_name": 2}
    assert (out / "classes.txt").read_text() == "0 jumping\n1 running\n"


def test_beam_direct_runner_with_worker_processes_is_quiet_and_writes_the_data(tmp_path):
    """--runner=direct with 2 workers: Beam's worker processes print INFO/WARNING logging and TensorFlow's
    load lines to the inherited stderr; quiet output hides them, keeps the project's lines, and the data is
    the local runner's (the same dataset.json counts)."""
    for rel, seed in (("running/a.mp4", 0), ("running/b.avi", 1), ("jumping/c.mp4", 2)):
        write_video(str(tmp_path / "videos" / rel), pattern_frames(10, 16, 24, seed))
    write_garbage(str(tmp_path / "videos" / "jumping" / "broken.mp4"))
    common = [f"--video_dir={tmp_path / 'videos'}", "--source=kinetics600", "--resolution=8", "--min_frames=4",
              "--videos_per_shard=1", "--workers=2"]
    beam = run_prepare(*common, f"--output_dir={tmp_path / 'beam'}", "--runner=direct")
    assert beam.returncode == 0, beam.stderr
    assert "train 3 videos" in beam.stdout and "1 unreadable" in beam.stdout
    assert "skipped jumping/broken.mp4 (unreadable)" in beam.stderr and "preparing kinetics600 (direct)" in beam.stderr
    noisy = [line for line in beam.stderr.replace("\r", "\n").splitlines()
             if line.startswith(("INFO:", "WARNING:", "I0000", "W0000"))]
    assert not noisy, noisy
    local = run_prepare(*common, f"--output_dir={tmp_path / 'local'}")
    assert local.returncode == 0, local.stderr
    meta = [json.loads((tmp_path / d / "dataset.json").read_text()) for d in ("beam", "local")]
    assert meta[0]["splits"] == meta[1]["splits"]


def test_runner_options_without_a_runner_exit_2(tmp_path):
    result = run_prepare("--source=kinetics600", f"--video_dir={tmp_path}", f"--output_dir={tmp_path / 'o'}",
                         "--resolution=8", "--", "--project=p")
    assert result.returncode != 0 and "options after '--' are for a Beam --runner" in result.stderr
    assert "Traceback" not in result.stderr
