"""dvdgan-train --strategy=multi_worker as real processes on 127.0.0.1 (TF_CONFIG, ring all-reduce on CPU):

- two workers train the demo config (at the tiny widths of test_training_loop, 10 steps, global batch 2): both
  exit 0 holding identical weights, only the chief's model_dir holds checkpoints, events, the export and the
  config, and the weights agree with a one-process run at the same global batch;
- ``kill -9`` of one worker mid-run: the other exits non-zero within 2 minutes naming the lost worker; both
  relaunched resume from the last checkpoint's step.

Each process is the binary itself, run through a small wrapper that also writes the trained weights (G, D_S, D_T,
G_ema: every variable, BN statistics and SN vectors included) to an .npz when the binary ends, so that the
weights of a worker that writes no checkpoint can be compared. The kill -9 test is slow (several TensorFlow
processes at once, minutes on 2 cores): run it with ``-m slow``.

Two workers against one process (global batch 2: one clip per worker, both clips on the one process): the same
draws and clips (tests/test_training_replicas.py), so they differ only in float summation order, and the
tolerance is that test's, for 10 steps instead of 3: ||a - b|| <= 1e-5 * ||a|| + sqrt(n) * 10 * 4e-4 * 1e-4 for a
tensor of n entries (the per-entry floor of weights that start at 0, the attention gammas and the biases: steps *
lr * a gradient known to 1e-4 relatively; measured: up to 4e-5 of the norm of G's first linear bias), with the same
exclusions (G's convolution biases that feed a batch norm: exact gradient 0, their values are rounding noise
scaled up by Adam; BN moving means, which contain them; G_ema's recomputed statistics and SN vectors). G's and
D's SN vectors are compared within 5e-5: one power iteration per step moves a vector whose singular values are
close by more than the weights (measured 1.9e-5 after 10 steps for G's block_8b/conv1; the 3-step test sees
<= 1e-5), while sigma = u W v, the number used, is stationary in u.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["NUM_CLASSES = 3", "NUM_FRAMES = 4", "RESOLUTION = 16",
        "G.ch = 4", "G.channel_multipliers = (4, 2, 2)", "G.attention_resolutions = (8,)",
        "D_S.ch = 4", "D_S.channel_multipliers = (1, 2)", "D_S.k = 2",
        "D_T.ch = 4", "D_T.channel_multipliers = (1, 2)",
        "train.global_batch_size = 2", "train.class_accuracy_every = 0", "train.samples_per_class = 1",
        "train.progress = False", "train.log_every = 1",
        "standing_stats.num_batches = 2", "standing_stats.batch_size = 2",
        "export_generator.standing_truncations = (0.0,)"]
WRAPPER = '''
import sys
import numpy as np
dump = sys.argv.pop(1)
from dvdgan_tf.cli import train as cli
from dvdgan_tf.training import loop
trainers, build = [], loop._build_trainer
def capture(*args, **kwargs):
    trainers.append(build(*args, **kwargs))
    return trainers[-1]
loop._build_trainer = capture
try:
    cli.run()
finally:
    if trainers:
        weights = {}
        for name in ("G", "D_S", "D_T", "G_ema"):
            net = getattr(trainers[-1], name)
            trainable = {id(v) for v in net.trainable_variables}
            for v in net.variables:  # "t G/<path>": trainable, "n G/<path>": statistics and SN vectors
                weights[f"{'t' if id(v) in trainable else 'n'} {name}/{v.path.split('/', 1)[1]}"] = v.numpy()
        np.savez(dump, **weights)
'''


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def launch(tmp_path, name, model_dir, settings, strategy="multi_worker", cluster=None, index=0):
    """Starts the wrapped dvdgan-train; returns (process, weights .npz path, log path)."""
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(WRAPPER)
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    environ.pop("TF_CONFIG", None)
    if cluster:
        environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": cluster},
                                           "task": {"type": "worker", "index": index}})
    dump, log = tmp_path / f"{name}.npz", tmp_path / f"{name}.log"
    args = [sys.executable, str(wrapper), str(dump), f"--strategy={strategy}", f"--model_dir={model_dir}",
            "--gin_file=gin/demo.gin"] + [f"--gin_param={p}" for p in TINY + settings]
    with open(log, "w") as out:
        process = subprocess.Popen(args, cwd=REPO, env=environ, stdout=out, stderr=subprocess.STDOUT)
    return process, dump, log


def two_workers(tmp_path, tag, model_dirs, settings):
    cluster = [f"127.0.0.1:{p}" for p in free_ports(2)]
    return cluster, [launch(tmp_path, f"{tag}{i}", model_dirs[i], settings, cluster=cluster, index=i)
                     for i in (0, 1)]


def finish(process, log, timeout=900):
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"still running after {timeout} s: {log.read_text()[-2000:]}")
    return process.returncode, log.read_text()


def load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def files_under(folder):
    return sorted(os.path.relpath(os.path.join(root, f), folder)
                  for root, _, names in os.walk(folder) for f in names) if os.path.exists(folder) else []


def test_two_workers_train_like_one_process(tmp_path):
    settings = ["train.num_steps = 10", "train.checkpoint_every = 5", "train.sample_every = 5"]
    chief_dir, worker_dir, single_dir = (str(tmp_path / d) for d in ("chief", "worker", "single"))
    started = time.time()
    _, workers = two_workers(tmp_path, "w", [chief_dir, worker_dir], settings)
    single = launch(tmp_path, "single", single_dir, settings, strategy="one_device")
    results = [finish(p, log) for p, _, log in workers + [single]]
    print(f"two workers and the one-process run, at once: {time.time() - started:.0f} s")
    for code, output in results:
        assert code == 0, output[-3000:]
    assert "dvdgan-train: finished at step 10" in results[0][1]
    assert "dvdgan-train (worker-1): finished at step 10" in results[1][1]

    chief, worker, one = (load(dump) for _, dump, _ in workers + [single])
    assert chief.keys() == worker.keys() == one.keys() and len(chief) > 200
    for key in chief:  # every variable of G, D_S, D_T and G_ema: the same numbers on both workers
        np.testing.assert_array_equal(chief[key], worker[key], err_msg=key)
    compared, far = [], {}
    for key, b in one.items():  # against one process at the same global batch (module docstring)
        kind, path = key.split(" ", 1)
        parts = path.split("/")
        if ((parts[0] in ("G", "G_ema") and parts[-1] == "bias" and parts[-2] in ("conv1", "conv2", "skip"))
                or path.endswith("moving_mean") or (parts[0] == "G_ema" and kind == "n")):
            continue
        compared.append(path)
        tolerance = 5e-5 if path.endswith("sn_u") else 1e-5
        if np.linalg.norm(chief[key] - b) > tolerance * np.linalg.norm(b) + np.sqrt(b.size) * 10 * 4e-4 * 1e-4:
            far[path] = np.linalg.norm(chief[key] - b) / np.linalg.norm(b)
    assert not far, far
    for name in ("G/", "G_ema/", "D_S/", "D_T/"):
        assert sum(p.startswith(name) for p in compared) >= 10, name
    assert any("sn_u" in p for p in compared) and any("moving_variance" in p for p in compared)

    written = files_under(chief_dir)
    assert {"operative_config.gin", "checkpoints/ckpt-5.index", "checkpoints/ckpt-10.index",
            "export/10/saved_model.pb"} <= set(written), written
    assert len([f for f in written if f.startswith("events.out.tfevents")]) == 1
    assert not [f for f in written if f.startswith(".")], written  # no temporary folder left
    assert files_under(worker_dir) == []  # the other worker wrote nothing that stayed


@pytest.mark.slow
def test_killed_worker_ends_the_job_and_both_resume(tmp_path):
    model_dir = str(tmp_path / "run")  # shared by both workers (one file system here; gs:// or NFS on hosts)
    settings = ["train.num_steps = 1000", "train.checkpoint_every = 2", "train.sample_every = 0",
                "train.export_at_end = False"]
    cluster, workers = two_workers(tmp_path, "k", [model_dir, model_dir], settings)
    (chief, _, chief_log), (other, _, _) = workers
    deadline = time.time() + 600
    while not os.path.exists(os.path.join(model_dir, "checkpoints", "ckpt-2.index")):
        assert chief.poll() is None and other.poll() is None, chief_log.read_text()[-3000:]
        assert time.time() < deadline, "no checkpoint after 600 s"
        time.sleep(0.5)
    os.kill(other.pid, signal.SIGKILL)
    killed = time.time()
    code, output = finish(chief, chief_log, timeout=150)
    waited = time.time() - killed
    other.wait()
    print(f"the chief ended {waited:.0f} s after the kill")
    assert code != 0 and waited < 120, (code, waited)
    last = output.strip().splitlines()[-1]
    assert last.startswith(f"dvdgan-train: error: lost worker 1 ({cluster[1]}, task "), last
    assert "restart every worker" in last

    steps = sorted(int(f[len("ckpt-"):-len(".index")]) for f in os.listdir(os.path.join(model_dir, "checkpoints"))
                   if f.endswith(".index"))
    resumed = steps[-1]
    assert resumed >= 2
    settings[0] = f"train.num_steps = {resumed + 2}"
    _, workers = two_workers(tmp_path, "r", [model_dir, model_dir], settings)
    results = [finish(p, log) for p, _, log in workers]
    for code, output in results:
        assert code == 0, output[-3000:]
        assert f"ckpt-{resumed} (step {resumed})" in output  # "resuming from .../ckpt-<s> (step <s>)."
    assert f"dvdgan-train: finished at step {resumed + 2}" in results[0][1]
    assert os.path.exists(os.path.join(model_dir, "checkpoints", f"ckpt-{resumed + 2}.index"))
    assert not [f for f in os.listdir(model_dir) if f.startswith(".")]  # the killed worker's leftovers are gone
