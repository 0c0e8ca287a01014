"""dvdgan-export and dvdgan-sample end to end on a tiny run: the files decode back to the right frames, and
user mistakes end with one line on stderr and exit code 2."""
import os
import subprocess
import sys

import av
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_binary(name, *args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", f"dvdgan_tf.cli.{name}", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def decode(path):
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="module")
def cli_export(tiny_run_dir, tmp_path_factory):
    """dvdgan-export of step 5 of the tiny run."""
    out = str(tmp_path_factory.mktemp("cli") / "export_5")
    result = run_binary("export", f"--model_dir={tiny_run_dir['model_dir']}", "--step=5", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"step 5 to {out}" in result.stdout
    return out


def test_export_then_sample_a_grid_as_mp4(cli_export, tmp_path):
    out = str(tmp_path / "grid.mp4")
    result = run_binary("sample", f"--export_dir={cli_export}", "--label=2", "--num=3", "--cols=2",
                        "--truncation=1.0", "--seed=4", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    frames = decode(out)
    # 3 frames; a 2 x 2 grid of 16 x 16 cells with 2 pixels between them: 34 x 34.
    assert frames.shape == (3, 34, 34, 3)
    assert frames[:, 18:, 18:].max() < 16 and frames[:, :16, :16].std() > 5  # empty cell black, others not
    assert "wrote 3 sample(s) of class 2" in result.stdout


def test_sample_one_video_as_gif(cli_export, tmp_path):
    out = str(tmp_path / "one.gif")
    result = run_binary("sample", f"--export_dir={cli_export}", "--label=0", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out, "rb") as f:
        assert f.read(6) == b"GIF89a"
    assert decode(out).shape == (3, 16, 16, 3)


def test_sample_rejects_a_bad_extension_before_loading(tmp_path):
    result = run_binary("sample", f"--export_dir={tmp_path}", "--label=0", f"--out={tmp_path / 'x.avi'}")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("dvdgan-sample: error:") and ".mp4 or .gif" in result.stderr
    assert "Traceback" not in result.stderr and not os.listdir(tmp_path)


def test_sample_wrong_label_or_folder_fails_fast(cli_export, tmp_path):
    result = run_binary("sample", f"--export_dir={cli_export}", "--label=3", f"--out={tmp_path / 'x.gif'}")
    assert result.returncode == 2 and "label 3 is outside the class range [0, 3)" in result.stderr
    result = run_binary("sample", f"--export_dir={tmp_path}", "--label=0", f"--out={tmp_path / 'x.gif'}")
    assert result.returncode == 2 and "is not a SavedModel export" in result.stderr
    assert "Traceback" not in result.stderr and not os.listdir(tmp_path)


def test_export_missing_step_lists_the_available_ones(tiny_run_dir, tmp_path):
    result = run_binary("export", f"--model_dir={tiny_run_dir['model_dir']}", "--step=7", f"--out={tmp_path}/e")
    assert result.returncode == 2
    assert "no checkpoint for step 7" in result.stderr and "available steps: 5, 10" in result.stderr
    assert "Traceback" not in result.stderr and not os.path.exists(tmp_path / "e")
