"""The training loop under faults: corrupt checkpoints, a full disk, two trainers on one model_dir, signals at
the worst moments, and bad gin values. Tiny networks, 1-3 steps."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.errors import ConfigError
from dvdgan_tf.io import files
from dvdgan_tf.training import loop
from dvdgan_tf.training import run_dir as run_dir_lib
from dvdgan_tf.training.signals import StopRequest
from test_training_loop import REPO, TINY, checkpoint_steps, tiny_config

ENV = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


def checkpoint_tensors(prefix_or_dir):
    reader = tf.train.load_checkpoint(prefix_or_dir)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if not k.startswith(("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter"))}


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    """A tiny deterministic run with ckpt-1 and ckpt-2, and ckpt-2's tensors."""
    model_dir = str(tmp_path_factory.mktemp("two"))
    tiny_config("train.num_steps = 2", "train.deterministic = True")
    loop.train(model_dir)
    return model_dir, checkpoint_tensors(os.path.join(model_dir, "checkpoints", "ckpt-2"))


def _truncate_data(prefix):
    (data,) = [p for p in os.listdir(os.path.dirname(prefix)) if p.startswith("ckpt-2.data")]
    path = os.path.join(os.path.dirname(prefix), data)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _delete_index(prefix):
    os.remove(prefix + ".index")


def _flip_bytes(prefix):
    (data,) = [p for p in os.listdir(os.path.dirname(prefix)) if p.startswith("ckpt-2.data")]
    path = os.path.join(os.path.dirname(prefix), data)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        chunk = f.read(16)
        f.seek(os.path.getsize(path) // 2)
        f.write(bytes(b ^ 0xFF for b in chunk))


@pytest.mark.parametrize("corrupt, reason", [(_truncate_data, "IndexError"), (_delete_index, ".index file is missing"),
                                             (_flip_bytes, "Checksum does not match")])
def test_each_corruption_is_found_and_named(two_checkpoints, tmp_path, corrupt, reason):
    model_dir = str(tmp_path / "run")
    shutil.copytree(two_checkpoints[0], model_dir)
    corrupt(os.path.join(model_dir, "checkpoints", "ckpt-2"))
    good, bad = run_dir_lib.readable_checkpoints(model_dir, warn=False)
    assert sorted(good) == [1]
    ((prefix, message),) = bad
    assert prefix.endswith("ckpt-2") and reason in message, message


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(two_checkpoints, tmp_path, capsys):
    """Training past a corrupt newest checkpoint (flipped bytes; the other corruptions are found the same way,
    test above): warned, moved aside, resumed from ckpt-1, and step 2 trained again equals the lost step 2."""
    model_dir = str(tmp_path / "run")
    shutil.copytree(two_checkpoints[0], model_dir)
    _flip_bytes(os.path.join(model_dir, "checkpoints", "ckpt-2"))
    tiny_config("train.num_steps = 2", "train.deterministic = True")
    result = loop.train(model_dir)
    err = capsys.readouterr().err
    assert result["step"] == 2
    assert "resuming from" in err and "ckpt-1 (step 1)" in err
    assert re.search(r"warning: checkpoint \S*ckpt-2 is unreadable", err), err
    assert any(n.startswith("ckpt-2") for n in os.listdir(os.path.join(model_dir, "checkpoints", "corrupt")))
    # Step 2 was trained again from ckpt-1; with exact resume it equals the step 2 that was lost.
    again = checkpoint_tensors(os.path.join(model_dir, "checkpoints", "ckpt-2"))
    assert again.keys() == two_checkpoints[1].keys()
    different = [k for k in again if not np.array_equal(again[k], two_checkpoints[1][k])]
    assert not different, different[:5]


def test_no_readable_checkpoint_at_all_is_refused_and_nothing_is_moved(two_checkpoints, tmp_path):
    """Storage that fails for every checkpoint may be failing only now: never start afresh over them."""
    model_dir = str(tmp_path / "run")
    shutil.copytree(two_checkpoints[0], model_dir)
    for step in (1, 2):
        os.remove(os.path.join(model_dir, "checkpoints", f"ckpt-{step}.index"))
    before = sorted(os.listdir(os.path.join(model_dir, "checkpoints")))
    tiny_config("train.num_steps = 2")
    with pytest.raises(run_dir_lib.DataError, match=r"no checkpoint in \S+ can be read \(2 tried; .*move \S+ "
                                                    r"aside to start afresh"):
        loop.train(model_dir)
    assert sorted(os.listdir(os.path.join(model_dir, "checkpoints"))) == before


def test_export_and_restore_skip_an_unreadable_newest_checkpoint(two_checkpoints, tmp_path, capsys):
    model_dir = str(tmp_path / "run")
    shutil.copytree(two_checkpoints[0], model_dir)
    _flip_bytes(os.path.join(model_dir, "checkpoints", "ckpt-2"))
    _, step = run_dir_lib.restore_ema_generator(model_dir)
    assert step == 1 and "ckpt-2 is unreadable" in capsys.readouterr().err
    with pytest.raises(run_dir_lib.DataError, match=r"ckpt-2 is unreadable .*Readable steps: 1\."):
        run_dir_lib.restore_ema_generator(model_dir, step=2)


def _mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {result.stderr.strip()}")


def _fill(folder):
    """Fills the file system of ``folder`` to the last byte (unbuffered writes, big then single bytes)."""
    fd = os.open(os.path.join(folder, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (b"\0" * 65536, b"\0"):
            try:
                while True:
                    os.write(fd, chunk)
            except OSError:
                pass
    finally:
        os.close(fd)


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    _mount_tmpfs(mount, "8m")
    yield str(mount)
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_while_checkpointing_ends_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, small_disk):
    """model_dir on a normal disk, its checkpoints/ on a small file system that fills after ckpt-1."""
    model_dir = str(tmp_path / "run")
    os.makedirs(model_dir)
    os.symlink(small_disk, os.path.join(model_dir, "checkpoints"))
    tiny_config("train.num_steps = 1")
    loop.train(model_dir)
    _fill(small_disk)
    tiny_config("train.num_steps = 2")
    with pytest.raises(files.StorageError, match=r"cannot write \S*ckpt-2: the disk is full \(0 B free there; "
                                                 r"about [\d.]+ [KM]iB is needed\)"):
        loop.train(model_dir)
    leftovers = [n for n in os.listdir(small_disk) if n.startswith(("ckpt-2", ".")) or "temp" in n]
    assert not leftovers
    assert tf.train.latest_checkpoint(small_disk).endswith("ckpt-1")
    assert not os.path.exists(os.path.join(model_dir, "lock"))
    assert sorted(run_dir_lib.readable_checkpoints(model_dir)[0]) == [1]  # intact: the same command resumes


def test_disk_full_before_start_leaves_no_temporary_config(small_disk):
    model_dir = os.path.join(small_disk, "run")
    os.makedirs(model_dir)
    _fill(small_disk)
    tiny_config("train.num_steps = 1")
    with pytest.raises(files.StorageError, match="the disk is full"):
        loop.train(model_dir)
    assert sorted(os.listdir(model_dir)) == []  # no operative_config.gin(.tmp), no lock


def test_second_trainer_on_the_same_model_dir_is_refused_and_a_stale_lock_taken_over(tmp_path, capsys):
    holder = subprocess.Popen(["sleep", "60"])
    try:
        lock = {"host": os.uname().nodename, "pid": holder.pid, "started": "2026-01-01T00:00:00"}
        files.write_text(str(tmp_path / "lock"), json.dumps(lock))
        tiny_config("train.num_steps = 1")
        with pytest.raises(ConfigError, match=rf"in use by another dvdgan-train \(pid {holder.pid} on "):
            loop.train(str(tmp_path))
        assert not os.path.exists(tmp_path / "checkpoints")
    finally:
        holder.kill()
        holder.wait()
    with run_dir_lib.RunLock(str(tmp_path)):  # the holder is gone: its lock is stale and taken over
        assert json.loads(files.read_text(str(tmp_path / "lock")))["pid"] == os.getpid()
    assert f"taking over the stale lock of pid {holder.pid}" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "lock")  # released


def test_second_trainer_process_exits_2_naming_the_first(tmp_path):
    cmd = [sys.executable, "-m", "dvdgan_tf.cli.train", f"--gin_file={REPO}/gin/demo.gin",
           *[f"--gin_param={p}" for p in TINY], f"--model_dir={tmp_path}"]
    first = subprocess.Popen(cmd + ["--gin_param=train.num_steps = 100000"], cwd=REPO, env=ENV,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not os.path.exists(tmp_path / "lock") and time.time() < deadline:
            time.sleep(0.2)
        second = subprocess.run(cmd + ["--gin_param=train.num_steps = 1"], cwd=REPO, env=ENV,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert f"in use by another dvdgan-train (pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait()


def test_stop_request_records_the_first_signal_and_survives_a_second(capfd):
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        assert stop.signal == "SIGTERM"
    assert "SIGINT again: already stopping" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored


def test_signals_during_the_final_save_do_not_interrupt_it(tmp_path, monkeypatch, capfd):
    save = loop._Checkpoints.save

    def save_under_fire(self, step):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handlers run here, in the middle of the save
        save(self, step)

    monkeypatch.setattr(loop._Checkpoints, "save", save_under_fire)
    tiny_config("train.num_steps = 3", "train.checkpoint_every = 0")
    result = loop.train(str(tmp_path))
    assert result["step"] == 3 and result["stopped_by"] == "SIGTERM"
    assert checkpoint_steps(str(tmp_path)) == [3]
    run_dir_lib.check_checkpoint(os.path.join(str(tmp_path), "checkpoints", "ckpt-3"))  # complete and readable
    assert "SIGINT again: already writing the final checkpoint" in capfd.readouterr().err


def _train_process(tmp_path, *extra):
    cmd = [sys.executable, "-m", "dvdgan_tf.cli.train", f"--gin_file={REPO}/gin/demo.gin",
           *[f"--gin_param={p}" for p in TINY if "progress" not in p], f"--model_dir={tmp_path}",
           *[f"--gin_param={p}" for p in extra]]
    return subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_quick_sigterms_still_save_the_checkpoint_and_exit_zero(tmp_path):
    proc = _train_process(tmp_path, "train.num_steps = 100000", "train.checkpoint_every = 0")
    output, deadline = "", time.time() + 240
    while not re.search(r"\b[1-9]\d*/100000\b", output) and time.time() < deadline:
        output += proc.stderr.read(1)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 0, output + rest
    assert re.search(r"stopped by SIG(TERM|INT) at step", rest) and "Traceback" not in rest
    (saved,) = checkpoint_steps(str(tmp_path))
    assert saved >= 1
    assert not [n for n in os.listdir(tmp_path / "checkpoints") if "temp" in n]


def test_signal_during_start_up_exits_zero_without_traceback(tmp_path):
    proc = _train_process(tmp_path, "train.num_steps = 5")
    time.sleep(3)  # inside the TensorFlow import or the network build
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "stopped by SIGINT" in err and "stopped at step" in out


@pytest.mark.parametrize("binding, message", [
    ("train.num_steps = 'abc'", r"train\.num_steps must be an integer >= 1, got 'abc' \(str\)"),
    ("train.num_steps = -5", r"train\.num_steps must be an integer >= 1, got -5"),
    ("train.num_steps = 2.5", r"train\.num_steps must be an integer >= 1, got 2\.5 \(float\)"),
    ("train.global_batch_size = 0", r"train\.global_batch_size must be an integer >= 1, got 0"),
    ("train.g_learning_rate = -1.0", r"train\.g_learning_rate must be a number > 0"),
    ("train.beta_2 = 1.0", r"train\.beta_2 must be a number in \[0, 1\)"),
    ("train.deterministic = 'yes'", r"train\.deterministic must be True or False"),
    ("train.metrics = 'fvd2048_16f'", r"train\.metrics must be a tuple of protocol names"),
])
def test_bad_train_values_are_one_line_config_errors(tmp_path, binding, message):
    tiny_config(binding)
    with pytest.raises(ConfigError, match=message):
        loop.train(str(tmp_path))
    assert os.listdir(tmp_path) == []  # refused before anything is written


def test_bad_value_through_the_binary_is_one_line_and_exit_2(tmp_path):
    proc = _train_process(tmp_path, "train.num_steps = 'abc'")
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("dvdgan-train: error: train.num_steps must be an integer >= 1, got 'abc'")
    assert "Traceback" not in err
