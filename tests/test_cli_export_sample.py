"""dvdgan-export and dvdgan-sample end to end on a tiny run: the files decode back to the right frames, and
user mistakes end with one line on stderr and exit code 2."""
import glob
import json
import os
import shutil
import stat
import subprocess
import sys

import av
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_binary(name, *args, umask=None):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    preexec = None if umask is None else (lambda: os.umask(umask))
    return subprocess.run([sys.executable, "-m", f"dvdgan_tf.cli.{name}", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, preexec_fn=preexec)


def one_line_error(result, binary):
    """The user-error contract: exit 2, no traceback, the last stderr line is `<binary>: error: ...`."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{binary}: error: ")
    return last


def decode(path):
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="module")
def cli_export(tiny_run_dir, tmp_path_factory):
    """dvdgan-export of step 5 of the tiny run, with standing statistics stored for truncations 0.5 and 0."""
    out = str(tmp_path_factory.mktemp("cli") / "export_5")
    result = run_binary("export", f"--model_dir={tiny_run_dir['model_dir']}", "--step=5", f"--out={out}",
                        "--standing_truncations=0.5,0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"step 5 to {out}" in result.stdout
    with open(os.path.join(out, "assets", "dvdgan_export.json"), encoding="utf-8") as f:
        assert json.load(f)["standing_truncations"] == [0.0, 0.5]
    return out


def test_export_then_sample_a_grid_as_mp4(cli_export, tmp_path):
    out = str(tmp_path / "grid.mp4")
    result = run_binary("sample", f"--export_dir={cli_export}", "--label=2", "--num=3", "--cols=2",
                        "--truncation=0.5", "--truncation_convention=scaled", "--seed=4", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    frames = decode(out)
    # 3 frames; a 2 x 2 grid of 16 x 16 cells with 2 pixels between them: 34 x 34.
    assert frames.shape == (3, 34, 34, 3)
    assert frames[:, 18:, 18:].max() < 16 and frames[:, :16, :16].std() > 5  # empty cell black, others not
    assert "wrote 3 sample(s) of class 2" in result.stdout


def test_sample_one_video_as_gif(cli_export, tmp_path):
    """...readable by others as the umask allows (it was 0600 whatever the umask)."""
    out = str(tmp_path / "one.gif")
    result = run_binary("sample", f"--export_dir={cli_export}", "--label=0", f"--out={out}", umask=0o027)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out, "rb") as f:
        assert f.read(6) == b"GIF89a"
    assert decode(out).shape == (3, 16, 16, 3)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640  # 0o666 & ~0o027
    assert os.listdir(tmp_path) == ["one.gif"]


def test_sample_from_a_corrupt_saved_model_pb_is_one_line(cli_export, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(cli_export, damaged)
    (damaged / "saved_model.pb").write_bytes(b"\x08\x01 definitely not a SavedModel \xff" * 20)
    result = run_binary("sample", f"--export_dir={damaged}", "--label=0", f"--out={tmp_path / 'x.gif'}")
    last = one_line_error(result, "dvdgan-sample")
    assert f"{damaged} holds a damaged SavedModel that cannot be loaded" in last and "export it again" in last
    assert not (tmp_path / "x.gif").exists()


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
    result = run_binary("sample", f"--export_dir={cli_export}", "--label=0", "--truncation=-1",
                        f"--out={tmp_path / 'x.gif'}")
    assert "--truncation must be a finite number >= 0" in one_line_error(result, "dvdgan-sample")
    assert "Traceback" not in result.stderr and not os.listdir(tmp_path)


def test_export_missing_step_lists_the_available_ones(tiny_run_dir, tmp_path):
    result = run_binary("export", f"--model_dir={tiny_run_dir['model_dir']}", "--step=7", f"--out={tmp_path}/e")
    assert result.returncode == 2
    assert "no checkpoint for step 7" in result.stderr and "available steps: 5, 10" in result.stderr
    assert "Traceback" not in result.stderr and not os.path.exists(tmp_path / "e")


def damage(prefix, how):
    """Damages the checkpoint at ``prefix`` as a crash or a bad disk would."""
    (data,) = glob.glob(prefix + ".data-*")
    if how == "truncated_data":
        with open(data, "r+b") as f:
            f.truncate(os.path.getsize(data) // 2)
    elif how == "deleted_index":
        os.remove(prefix + ".index")
    elif how == "flipped_bytes":
        with open(data, "r+b") as f:
            f.seek(os.path.getsize(data) // 2)
            chunk = f.read(64)
            f.seek(os.path.getsize(data) // 2)
            f.write(bytes(b ^ 0xFF for b in chunk))


@pytest.fixture(params=["truncated_data", "deleted_index", "flipped_bytes"])
def run_with_bad_latest(request, tiny_run_dir, tmp_path):
    """A copy of the tiny run whose latest checkpoint (step 10) is damaged; step 5 is intact."""
    model_dir = tmp_path / "run"
    shutil.copytree(tiny_run_dir["model_dir"], model_dir)
    bad = str(model_dir / "checkpoints" / "ckpt-10")
    damage(bad, request.param)
    return str(model_dir), bad


def test_export_skips_a_corrupt_latest_checkpoint_with_a_warning(run_with_bad_latest, tiny_run_dir, tmp_path):
    model_dir, bad = run_with_bad_latest
    out = str(tmp_path / "export")
    result = run_binary("export", f"--model_dir={model_dir}", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"exported the EMA generator of step 5 to {out}" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "warning" in line.lower()]
    assert len([w for w in warnings if bad in w]) == 1, result.stderr[-3000:]  # one line naming the bad one
    assert "Traceback" not in result.stderr
    import tensorflow as tf
    model = tf.saved_model.load(out)
    assert int(model.step.numpy()) == 5
    video = model.signatures["serving_default"](z=tf.constant(tiny_run_dir["z"]),
                                                label=tf.constant(tiny_run_dir["labels"]),
                                                truncation=tf.constant(0.0))["video"].numpy()
    np.testing.assert_allclose(video, tiny_run_dir["videos"][5], atol=1e-5)  # step 5's weights, not step 10's


def test_export_of_the_corrupt_step_asked_for_is_one_line(run_with_bad_latest, tmp_path):
    model_dir, bad = run_with_bad_latest
    result = run_binary("export", f"--model_dir={model_dir}", "--step=10", f"--out={tmp_path / 'e'}")
    last = one_line_error(result, "dvdgan-export")
    assert bad in last and "unreadable" in last
    assert not (tmp_path / "e").exists()


def test_check_export_reads_a_remote_export():
    """dvdgan-sample's check of an export on gs:// goes through tf.io.gfile (ram:// stands in)."""
    import tensorflow as tf
    from dvdgan_tf.cli import sample
    from dvdgan_tf.errors import ConfigError, DataError
    folder = "ram://check-export-test/export/7"
    with pytest.raises(DataError, match="no saved_model.pb"):
        sample.check_export(folder, None)
    with tf.io.gfile.GFile(folder + "/saved_model.pb", "wb") as f:
        f.write(b"stand-in")
    tf.io.gfile.makedirs(folder + "/assets")
    with tf.io.gfile.GFile(folder + "/assets/dvdgan_export.json", "w") as f:
        f.write(json.dumps({"num_classes": 3}))
    try:
        assert sample.check_export(folder + "/", 2) == {"num_classes": 3}
        with pytest.raises(ConfigError, match=r"label 3 is outside the class range \[0, 3\)"):
            sample.check_export(folder, 3)
    finally:
        tf.io.gfile.rmtree("ram://check-export-test")
