"""Scale-out of the training step: the same numbers on 1 and 2 replicas, N steps per tf.function
(train.steps_per_loop), the whole replica step compiled with XLA (train.jit_compile) and bfloat16 keeping its
state in float32.

The 1-vs-2-replica test runs in a subprocess (this file run as a script): logical CPU devices must be configured
before TensorFlow initialises, which the pytest process has already done.

Why 1e-5. Both runs draw the same z, labels, D_S frames and real clips for the global batch (each replica takes
its rows), so they differ only in the order of float32 sums: BN's moments and every weight's gradient are one sum
over the global batch on one replica, two partial sums and an all-reduce on two. A sum of n terms in another order
moves by about sqrt(n) * 6e-8 (float32 unit roundoff) of the sum of its terms' magnitudes: for the losses (sums of
4 positive terms) a few 1e-7 (measured: <= 3e-6 on G_loss, a difference of two terms). Through 3 steps those
differences feed forward into the weights; Adam moves each weight by lr * m / sqrt(v), so a gradient known to a
relative d moves its weight by ~lr * d per step. Measured after 3 steps: <= 1e-5 of each tensor's norm (relative,
||a - b|| / ||a||) for every weight and statistic compared, except weights that started at 0 (attention gammas),
whose size after 3 steps is only ~3 * lr = 1.2e-3; for them the absolute floor ABS_FLOOR = 3 steps * lr 4e-4 *
d 1e-4 = 1.2e-7 (d: the gradient of a scalar that sums ~8k products, sqrt(8k) * 6e-8 = 5e-6, times a
cancellation of ~20) applies per entry, so a tensor of n entries gets sqrt(n) * 1.2e-7 (its entries' differences
are independent roundings, summed in the norm): ||a - b|| <= 1e-5 * ||a|| + sqrt(n) * 1.2e-7. Every bias starts at
0 too: e.g. G's first linear layer's (256 entries in the tiny config) holds ~steps * lr per entry, and it differs
by up to 3e-7 per entry after the 8 steps of the steps-per-loop test.

SN vectors (u of each spectral-norm layer, one power iteration per call) are estimates of a singular vector:
a relative change e of the weights moves them by about e * sigma1 / (sigma1 - sigma2), so where the top two
singular values are within 10% of each other they carry 10x the weights' difference: SN_TOLERANCE = 1e-4
(measured: <= 1.3e-5, G's first linear layer).

Not compared as weights, and why:
- the biases of G's convolutions whose output goes straight into a batch norm (blocks' conv1; conv2 and skip,
  whose sum feeds the next block's BN; BigGAN has them too). BN subtracts them, so their exact gradient is 0 and
  they receive rounding noise, which Adam scales up to ~lr per step: their values are noise under ANY change of
  summation order, and they change no output computed with batch statistics. G's BN moving means contain them
  (compared: the moving variances, which a shift leaves alone, and G's clips with batch statistics).
- G_ema's standing BN statistics and SN vectors: recomputed from its weights (standing passes; power iteration to
  convergence, 1e-6 per iteration, from G's vectors). Where two singular values are close the vector is poorly
  determined (measured: up to 4e-2 apart), while sigma = u W v, the number used, is stationary in u. Compared:
  what they are for, G_ema's clips, within 1e-4 (measured 3e-5).
"""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)
TOLERANCE = 1e-5
ABS_FLOOR = 1.2e-7  # (module docstring)
SN_TOLERANCE = 1e-4  # spectral-norm vectors (module docstring)


def _pre_bn_bias(path):
    """G's convolution biases that feed a batch norm directly (exact gradient 0, see the module docstring)."""
    parts = path.split("/")
    return parts[0] in ("G", "G_ema") and parts[-1] == "bias" and parts[-2] in ("conv1", "conv2", "skip")


def _run_and_dump(model_dir, strategy, bindings):
    """Trains the tiny config under ``strategy``; returns its losses and ``_dump(model_dir)``."""
    from test_training_loop import tiny_config
    from dvdgan_tf.training import loop
    tiny_config(*bindings)
    return {"losses": loop.train(model_dir, strategy=strategy)["losses"], **_dump(model_dir)}


def _dump(model_dir):
    """Every variable of G, G_ema, D_S and D_T in model_dir's newest checkpoint (by path: (value, trainable)),
    and the clips of G and G_ema for fixed z and labels (inference, and batch statistics)."""
    from dvdgan_tf.nets import networks as models
    from dvdgan_tf.nets.generator import build_generator
    networks = models.build_networks()
    models.build_weights_eagerly(networks)
    ema = build_generator()
    ema(tf.zeros([1, ema.z_dim]), tf.zeros([1], tf.int32))
    tf.train.Checkpoint(G=networks.G, G_ema=ema, D_S=networks.D_S, D_T=networks.D_T).restore(
        tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))).expect_partial()
    weights = {}
    for name, net in (("G", networks.G), ("G_ema", ema), ("D_S", networks.D_S), ("D_T", networks.D_T)):
        trainable = {id(v) for v in net.trainable_variables}
        for v in net.variables:
            weights[f"{name}/{v.path.split('/', 1)[1]}"] = (v.numpy(), id(v) in trainable)
    z = tf.random.stateless_normal([4, ema.z_dim], [7, 7])
    labels = tf.constant([0, 1, 2, 0])
    outputs = {}
    for training in (False, True):  # (True: batch statistics; G's copy here is thrown away after)
        outputs[f"G/{training}"] = networks.G(z, labels, training=training).numpy()
        outputs[f"G_ema/{training}"] = ema(z, labels, training=training).numpy()
    return {"weights": weights, "outputs": outputs}


def assert_same_training(one, two, abs_floor):
    """The module docstring's comparison of two runs' ``_dump``s (and losses, where both have them)."""
    for name, value in one.get("losses", {}).items():
        assert two["losses"][name] == pytest.approx(value, rel=TOLERANCE, abs=abs_floor), name
    assert one["weights"].keys() == two["weights"].keys()
    compared, far = [], {}
    for path, (a, trainable) in one["weights"].items():
        if _pre_bn_bias(path) or path.endswith("moving_mean") or (path.startswith("G_ema/") and not trainable):
            continue
        compared.append(path)
        difference = np.linalg.norm(a - two["weights"][path][0])
        floor = abs_floor * np.sqrt(a.size)  # per entry (module docstring)
        if difference > (SN_TOLERANCE if path.endswith("sn_u") else TOLERANCE) * np.linalg.norm(a) + floor:
            far[path] = difference / np.linalg.norm(a)
    assert not far, far
    for name in ("G/", "G_ema/", "D_S/", "D_T/"):  # every network is there (a path change cannot empty the test)
        assert sum(p.startswith(name) for p in compared) >= 10, name
    assert any("sn_u" in p for p in compared) and any("moving_variance" in p for p in compared)
    for name, tolerance in (("G/True", TOLERANCE), ("G_ema/False", 1e-4)):
        a, b = one["outputs"][name], two["outputs"][name]
        assert np.linalg.norm(a - b) <= tolerance * np.linalg.norm(a), name
    assert np.std(one["outputs"]["G_ema/False"]) > 0.01  # real clips, not a constant


def _replicas_main(out_dir):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, TESTS)
    bindings = ["train.num_steps = 3", "train.global_batch_size = 4", "train.checkpoint_every = 0",
                "train.log_every = 0"]
    runs = {"one": _run_and_dump(os.path.join(out_dir, "one"), None, bindings),
            # (and the 3 steps as one loop: the distributed iterator and the replicas inside the while loop)
            "two": _run_and_dump(os.path.join(out_dir, "two"), tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"]),
                                 [*bindings, "train.steps_per_loop = 3"])}
    with open(os.path.join(out_dir, "runs.pkl"), "wb") as f:
        pickle.dump(runs, f)


@pytest.fixture(scope="module")
def one_and_two_replicas(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp("replicas"))
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, os.path.abspath(__file__), out_dir], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(out_dir, "runs.pkl"), "rb") as f:
        runs = pickle.load(f)
    return runs["one"], runs["two"]


def test_one_and_two_replicas_give_the_same_losses_and_weights(one_and_two_replicas):
    """Global batch 4 on 1 replica (the default strategy, 3 calls of a step) and on 2 (MirroredStrategy, 2 logical
    CPU devices, the 3 steps in one loop), 3 steps: the losses, every weight of G, D_S, D_T and G_ema, the SN vectors and BN variances of G, D_S and D_T,
    and the clips of G (batch statistics) and G_ema agree within the module docstring's tolerances (1e-5
    relative; SN vectors 1e-4)."""
    one, two = one_and_two_replicas
    assert sorted(one["losses"]) == sorted(two["losses"]) and len(one["losses"]) == 5
    assert_same_training(one, two, ABS_FLOOR)


# ---- steps per loop, compiled steps, bfloat16 (in this process) ----

def test_steps_per_loop_gives_the_weights_of_single_steps(tmp_path):
    """8 steps as 2 loops of 4 (one tf.function call each) and as 8 calls of 1 step, with deterministic kernels:
    the same weights as in the 1-vs-2-replica test (module docstring; ABS_FLOOR for 8 steps instead of 3). Not
    bit for bit: the while loop's body is optimised as a graph of its own (TensorFlow's graph rewrites and oneDNN
    fusions), so the same ops may round differently (measured: <= 2.1e-6 of each kernel's norm, 1.3e-5 for SN
    vectors, and up to 3e-7 per entry for the weights that started at 0: biases, attention gammas). Logs and
    checkpoints happen at loop boundaries."""
    from test_training_loop import checkpoint_steps, tiny_config
    from dvdgan_tf.training import loop
    runs = {}
    for steps_per_loop in (1, 4):
        model_dir = str(tmp_path / f"loop{steps_per_loop}")
        tiny_config("train.num_steps = 8", "train.checkpoint_every = 4", "train.log_every = 4",
                    "train.deterministic = True", f"train.steps_per_loop = {steps_per_loop}")
        assert loop.train(model_dir)["step"] == 8
        assert checkpoint_steps(model_dir) == [4, 8]
        runs[steps_per_loop] = _dump(model_dir)
    assert_same_training(runs[1], runs[4], ABS_FLOOR * 8 / 3)


def test_intervals_must_be_multiples_of_steps_per_loop(tmp_path):
    from test_training_loop import tiny_config
    from dvdgan_tf.config import ConfigError
    from dvdgan_tf.training import loop
    tiny_config("train.num_steps = 8", "train.steps_per_loop = 4", "train.checkpoint_every = 6",
                "train.log_every = 4")
    with pytest.raises(ConfigError, match=r"^train.checkpoint_every=6 is not a multiple of "
                                          r"train.steps_per_loop=4: set it to a multiple"):
        loop.train(str(tmp_path))


def test_jit_compile_with_bfloat16_on_cpu_is_a_clear_error(tmp_path):
    """XLA:CPU cannot compile bfloat16 gradients ("mixed precision is disallowed" deep in a traceback): refused
    at once, in one line, when no GPU or TPU is visible. (The same check refuses XLA with MirroredStrategy over
    several CPU devices, where XLA:CPU runs every replica on the first device and fails reading the others'
    variables; not tested: it needs logical devices, that is a process of its own.)"""
    from test_training_loop import tiny_config
    from dvdgan_tf.config import ConfigError
    from dvdgan_tf.training import loop
    if tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"):
        pytest.skip("an accelerator is visible: the combination is allowed there")
    tiny_config("train.num_steps = 1", "train.jit_compile = True", "train.mixed_precision = 'mixed_bfloat16'")
    with pytest.raises(ConfigError, match="cannot run on CPU with train.mixed_precision='mixed_bfloat16' .*: on CPU "
                                          "use it with float32 and one replica"):
        loop.train(str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_a_loop_stops_at_its_first_nan_step(tmp_path):
    """With NaN data and steps_per_loop = 4, the loop stops at the first bad step and the run names it (step 1,
    not the loop's end, step 4); nothing is saved."""
    from test_training_loop import tiny_config
    from dvdgan_tf.training import loop
    tiny_config("train.num_steps = 8", "train.dataset_fn = @nan_videos", "train.steps_per_loop = 4",
                "train.log_every = 4", "train.checkpoint_every = 4")
    with pytest.raises(loop.TrainingDivergedError, match=r"diverged at step 1: "):
        loop.train(str(tmp_path / "nan"))
    assert not tf.io.gfile.glob(str(tmp_path / "nan" / "checkpoints" / "ckpt-*"))


@pytest.mark.slow  # 3 short runs, 80 s of CPU: run with -m slow (the suite's 15-minute budget)
def test_loops_end_at_num_steps_and_realign_on_resume_on_ram_filesystem():
    """steps_per_loop = 4 on a ram:// model_dir: 6 steps run as 4 + 2 (the last loop ends at num_steps);
    resumed to 8, the run does 6 -> 8 (loops end at multiples of 4, where the intervals fall) and exports."""
    from test_training_loop import tiny_config
    from dvdgan_tf.training import loop
    from dvdgan_tf.training import run_dir as run_dir_lib
    model_dir = "ram://dvdgan-replicas-test/run"
    loop_bindings = ["train.steps_per_loop = 4", "train.log_every = 4", "train.checkpoint_every = 4"]
    tiny_config("train.num_steps = 6", *loop_bindings)
    assert loop.train(model_dir)["step"] == 6
    assert sorted(run_dir_lib.list_checkpoints(model_dir)) == [4, 6]
    tiny_config("train.num_steps = 8", "train.export_at_end = True", *loop_bindings)
    assert loop.train(model_dir)["step"] == 8
    assert sorted(run_dir_lib.list_checkpoints(model_dir)) == [4, 6, 8]
    assert tf.io.gfile.exists(model_dir + "/export/8/saved_model.pb")
    tf.io.gfile.rmtree("ram://dvdgan-replicas-test")


def _tiny_trainer(jit_compile, ema_decay=0.75):
    """A GanTrainer of the tiny config (global batch 2, EMA from step 0) and its data; call under a policy."""
    from dvdgan_tf.data.synthetic import moving_shapes
    from dvdgan_tf.nets import networks as models
    from dvdgan_tf.nets.generator import build_generator
    from dvdgan_tf.training import loop
    strategy = tf.distribute.get_strategy()
    networks = models.build_networks()
    trainer = loop._build_trainer(strategy, networks, build_generator(), global_batch_size=2, d_steps_per_g_step=1,
                                  g_learning_rate=4e-4, d_learning_rate=2e-4, beta_1=0.0, beta_2=0.999,
                                  ema_decay=ema_decay, ema_start_step=0, seed=0, jit_compile=jit_compile)
    return trainer, loop._distributed_data(strategy, moving_shapes, networks.G, 2, seed=0, start_example=0)


def _one_step_checking_the_ema(trainer, data, decay):
    """Runs one step; asserts G_ema's trainable weights became decay * before + (1 - decay) * G's new ones."""
    before = [v.numpy() for v in trainer.G.trainable_variables]
    losses = trainer.train_steps(data, 1)
    after = [v.numpy() for v in trainer.G.trainable_variables]
    assert not all(np.array_equal(a, b) for a, b in zip(before, after))  # G did move
    for ema_weight, old, new in zip(trainer.G_ema.trainable_variables, before, after):
        np.testing.assert_allclose(ema_weight.numpy(), decay * old + (1 - decay) * new, rtol=1e-6, atol=1e-7)
    return losses


def test_mixed_bfloat16_keeps_statistics_losses_and_ema_float32():
    """mixed_bfloat16: the layers compute in bfloat16, while the losses and every variable of G, G_ema, D_S and
    D_T (weights, BN statistics, SN vectors, the EMA) are float32, and the EMA is decay * EMA + (1 - decay) * G."""
    from test_training_loop import tiny_config
    from dvdgan_tf.training import loop
    tiny_config()
    with loop._precision_policy("mixed_bfloat16"):
        trainer, data = _tiny_trainer(jit_compile=False)
        losses = _one_step_checking_the_ema(trainer, data, 0.75)
        fake = trainer.G(tf.zeros([1, trainer.G.z_dim]), tf.zeros([1], tf.int32), training=False)
    assert trainer.G.compute_dtype == "bfloat16" and trainer.D_S.compute_dtype == "bfloat16"
    # G returns float32 clips computed in bfloat16: every value is a bfloat16 number.
    assert np.array_equal(tf.cast(tf.cast(fake, tf.bfloat16), tf.float32).numpy(), fake.numpy())
    assert {v.dtype for v in losses.values()} == {tf.float32} and len(losses) == 5
    assert all(np.isfinite(v.numpy()) for v in losses.values())
    for net in (trainer.G, trainer.G_ema, trainer.D_S, trainer.D_T):
        dtypes = {v.path: v.dtype for v in net.variables}
        floating = {p: d for p, d in dtypes.items() if "float" in d}  # (D_S's frame seed state is int64)
        assert set(floating.values()) == {"float32"}, {p: d for p, d in floating.items() if d != "float32"}
    assert any("moving_mean" in v.path for v in trainer.G_ema.variables)  # BN statistics are among them
    assert any("sn_u" in v.path for v in trainer.D_S.variables)


@pytest.mark.slow  # XLA compiles the whole step: about a minute on 2 busy cores (the suite's 15-minute budget)
def test_jit_compile_compiles_the_whole_replica_step_and_trains():
    """train.jit_compile: one XLA computation per replica step (D update, G update, EMA); it trains on CPU (a step,
    then a loop of 2 steps) and its EMA is decay * EMA + (1 - decay) * G. (float32: XLA:CPU rejects bfloat16
    gradients of ReLU, "mixed precision is disallowed", a CPU-only limitation.)"""
    from test_training_loop import tiny_config
    tiny_config()
    trainer, data = _tiny_trainer(jit_compile=True)
    losses = _one_step_checking_the_ema(trainer, data, 0.75)
    more = trainer.train_steps(data, 2)
    assert int(trainer.step.numpy()) == 3
    for result in (losses, more):
        assert all(np.isfinite(v.numpy()) for v in result.values())
    # Compiled whole: the replica step is one tf.function with jit_compile (not the D and G updates apart).
    assert trainer._replica._jit_compile is True


if __name__ == "__main__":
    _replicas_main(sys.argv[1])
