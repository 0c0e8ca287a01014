"""dvdgan-eval on a tiny exported generator (built here with the export contract's signature) and the real I3D:
the JSON record, the real-statistics cache, and clean errors (exit 2, no traceback)."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.errors import DataError
from dvdgan_tf.nets.generator import Generator
from dvdgan_tf.metrics import classifiers, evaluate, protocols

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TinyExport(tf.Module):
    """The generator export contract: serving_default(z [B, 120], label [B], truncation []) -> video, video_uint8,
    as exports were before the truncation conventions (no truncation_convention metadata; z clipped to [-t, t])."""

    def __init__(self, generator):
        super().__init__()
        self._generate = lambda z, label: generator(z, label, training=False)  # not tracked
        self.generator_variables = list(generator.variables)
        self.num_classes = tf.Variable(generator.num_classes, dtype=tf.int32, trainable=False)

    @tf.function(input_signature=[tf.TensorSpec([None, 120], tf.float32, name="z"),
                                  tf.TensorSpec([None], tf.int32, name="label"),
                                  tf.TensorSpec([], tf.float32, name="truncation")])
    def serve(self, z, label, truncation):
        z = tf.cond(truncation > 0, lambda: tf.clip_by_value(z, -truncation, truncation), lambda: z)
        video = self._generate(z, label)
        return {"video": video,
                "video_uint8": tf.cast(tf.round((video + 1) * 127.5), tf.uint8)}


def save_tiny_export(export_dir, num_frames):
    g = Generator(num_classes=3, num_frames=num_frames, resolution=16, ch=4, channel_multipliers=(4, 2, 2),
                  attention_resolutions=(8,))
    g(tf.zeros([1, 120]), tf.zeros([1], tf.int32))
    module = TinyExport(g)
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve.get_concrete_function()})
    return export_dir


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A 3-class generator of 9-frame 16x16 clips, exported; plus an npz of 6 real uint8 clips."""
    folder = tmp_path_factory.mktemp("eval")
    export_dir = save_tiny_export(str(folder / "export"), 9)
    real = np.random.default_rng(0).integers(0, 256, (6, 9, 16, 16, 3), dtype=np.uint8)
    np.savez(folder / "real.npz", videos=real)
    return {"export_dir": export_dir, "npz": str(folder / "real.npz"), "folder": folder}


def one_line_error(result, binary="dvdgan-eval"):
    """The user-error contract: exit 2, no traceback, the last stderr line is `<binary>: error: ...`."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{binary}: error: ")
    return last


def run_eval(*args, cache_dir=None):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "dvdgan_tf.cli.eval", "--noprogress", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_eval_writes_record_and_caches_real_statistics(tiny_export):
    try:
        classifiers.load_i3d()  # fetch the weights here, with a clear failure, before the subprocess needs them
    except DataError as e:
        pytest.fail(f"the real I3D weights are required and could not be obtained: {e}")
    out, cache = tiny_export["folder"] / "eval.json", tiny_export["folder"] / "stats"
    result = run_eval(f"--export_dir={tiny_export['export_dir']}", "--metrics=fvd4_9f,is10_9f",
                      f"--real_npz={tiny_export['npz']}", f"--out={out}", f"--stats_cache_dir={cache}",
                      "--batch_size=5", "--seed=3", "--truncation=1.5", "--truncation_convention=resample")
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    assert record == json.loads(result.stdout)
    assert set(record["metrics"]) == {"fvd4_9f", "is10_9f", "is10_9f_std"}
    assert record["metrics"]["fvd4_9f"] > 0 and 1.0 <= record["metrics"]["is10_9f"] <= 400
    assert record["protocols"]["fvd4_9f"]["num_samples"] == 4 and record["num_classes"] == 3
    assert record["truncation"] == 1.5 and record["truncation_convention"] == "resample"
    assert record["networks"]["i3d"].startswith("i3d-kinetics-400:")
    assert record["dataset"].startswith("npz:") and len(list(cache.glob("fvd4_9f-*.npz"))) == 1
    # the same evaluation in-process, with no real data at all: the cached statistics give the same FVD
    again = evaluate.evaluate_generator(tiny_export["export_dir"], None, "fvd4_9f", seed=3, batch_size=5,
                                        truncation=1.5,
                                        stats_cache_dir=str(cache), dataset_key=record["dataset"], progress=False)
    assert again["metrics"]["fvd4_9f"] == pytest.approx(record["metrics"]["fvd4_9f"], rel=1e-5)


def test_scaled_truncation_is_refused_for_an_export_that_clips_z(tiny_export):
    """An export older than the truncation conventions clips z to [-t, t]: harmless for 'resample' z, which lies
    inside, but it would distort 'scaled' z (up to 2t), so that is refused with the fix, before any work."""
    from dvdgan_tf.errors import ConfigError
    with pytest.raises(ConfigError, match="predates truncation conventions .* export it again"):
        evaluate.evaluate_generator(tiny_export["export_dir"], None, "fvd4_9f", truncation=0.5,
                                    truncation_convention="scaled", progress=False)
    with pytest.raises(ConfigError, match="unknown truncation convention 'clip'"):
        evaluate.evaluate_generator(tiny_export["export_dir"], None, "fvd4_9f", truncation=0.5,
                                    truncation_convention="clip", progress=False)


def test_errors_exit_2_without_traceback(tiny_export, tmp_path):
    result = run_eval(f"--export_dir={tiny_export['export_dir']}", f"--real_npz={tiny_export['npz']}",
                      f"--stats_cache_dir={tmp_path}", "--metrics=fvd4_16f")
    last = one_line_error(result)
    assert "dvdgan-eval: error: the generator makes 9-frame clips" in last
    suggested = re.findall(r"\b(?:fvd|fid|is)\d+_\d+f\b|\bisucf\d+x\d+\b|\bisv\d+_ucf\b", last.split("; ", 1)[1])
    assert "fvd2048_9f" in suggested
    assert all(protocols.get_protocol(name).num_frames == 9 for name in suggested)  # what it suggests, it accepts


def test_an_8_frame_generator_is_told_that_no_metric_applies(tmp_path):
    """I3D needs 9 frames and C3D 16: dvdgan-eval used to suggest fvd2048_8f, which it then refused."""
    export_dir = save_tiny_export(str(tmp_path / "export8"), 8)
    from dvdgan_tf.errors import ConfigError
    with pytest.raises(ConfigError, match="no metric applies to 8-frame clips: the I3D metrics .* need at least 9"):
        evaluate.evaluate_generator(export_dir, None, "fvd2048_16f", progress=False)
    with pytest.raises(ConfigError, match="needs clips of at least 9 frames"):
        evaluate.evaluate_generator(export_dir, None, "fvd2048_8f", progress=False)
    assert "fvd" not in "".join(protocols.suggested_names(8))


def test_real_clips_of_another_resolution_are_refused_naming_both_shapes(tiny_export, tmp_path):
    np.savez(tmp_path / "big.npz", videos=np.zeros((6, 9, 64, 64, 3), np.uint8))
    result = run_eval(f"--export_dir={tiny_export['export_dir']}", f"--real_npz={tmp_path / 'big.npz'}",
                      f"--stats_cache_dir={tmp_path / 'stats'}", "--metrics=fvd4_9f")
    last = one_line_error(result)
    assert "the real clips are 9 frames of 64x64 (shape [9, 64, 64, 3])" in last
    assert "the generator makes 9 frames of 16x16 (shape [9, 16, 16, 3])" in last
    assert not (tmp_path / "stats").exists()  # refused before any statistics


def test_real_npz_that_is_not_an_npz_or_holds_objects_is_one_line(tiny_export, tmp_path):
    np.save(tmp_path / "clips.npy", np.zeros((6, 9, 16, 16, 3), np.uint8))
    objects = np.empty((2,), dtype=object)
    objects[:] = [np.zeros(3), np.zeros(4)]
    np.savez(tmp_path / "objects.npz", videos=objects)
    for name, expected in (("clips.npy", "is a single .npy array, not an .npz archive"),
                           ("objects.npz", "objects.npz:videos is an object array")):
        result = run_eval(f"--export_dir={tiny_export['export_dir']}", f"--real_npz={tmp_path / name}",
                          "--stats_cache_dir=", "--metrics=fvd4_9f")
        last = one_line_error(result)
        assert expected in last and "pickled" not in last


def test_a_corrupt_saved_model_pb_is_one_line(tiny_export, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_export["export_dir"], damaged)
    (damaged / "saved_model.pb").write_bytes(b"\x08\x01 definitely not a SavedModel \xff" * 20)
    result = run_eval(f"--export_dir={damaged}", f"--real_npz={tiny_export['npz']}", "--stats_cache_dir=",
                      "--metrics=fvd4_9f")
    assert "holds a damaged SavedModel that cannot be loaded" in one_line_error(result)


def test_cache_root_honours_xdg_cache_home(tmp_path):
    """The three cache users (I3D weights, C3D files, dvdgan-eval's statistics) share files.cache_root():
    $XDG_CACHE_HOME/dvdgan_tf when $DVDGAN_CACHE_DIR is unset, $DVDGAN_CACHE_DIR when set."""
    code = ("from dvdgan_tf.cli import eval as e; from dvdgan_tf.metrics import c3d, i3d_weights\n"
            "from dvdgan_tf.errors import DataError\n"
            "print(e.default_stats_cache_dir()); print(i3d_weights.default_cache_dir())\n"
            "try:\n    c3d.find_c3d_files()\nexcept DataError as err:\n    print(str(err).split(': ')[1].split(', ')[0])\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DVDGAN_CACHE_DIR", "DVDGAN_I3D_WEIGHTS")}
    env.update(PYTHONPATH=REPO, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    for extra, root in (({}, tmp_path / "xdg" / "dvdgan_tf"), ({"DVDGAN_CACHE_DIR": str(tmp_path / "own")},
                                                              tmp_path / "own")):
        result = subprocess.run([sys.executable, "-c", code], env={**env, **extra}, cwd=tmp_path,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.split() == [str(root / "stats"), str(root / "i3d"),
                                         str(root / "c3d" / "conv3d_deepnetA_ucf.npz")]


def test_library_errors_name_the_problem(tiny_export, tmp_path):
    """The same checks as the binary, in-process (the binary prints these messages)."""
    from dvdgan_tf.errors import ConfigError
    from dvdgan_tf.metrics import real_data
    batches, key = real_data.npz_batches(tiny_export["npz"], batch_size=4)
    with pytest.raises(DataError, match="ended after 6 clips: fvd8_9f needs 8"):
        evaluate.evaluate_generator(tiny_export["export_dir"], batches, "fvd8_9f", dataset_key=key,
                                    stats_cache_dir=str(tmp_path), progress=False)
    with pytest.raises(DataError, match="is not a SavedModel export"):
        evaluate.evaluate_generator(str(tmp_path / "nothing"), None, "fvd4_9f", progress=False)
    with pytest.raises(ConfigError, match="need real data"):
        evaluate.evaluate_generator(tiny_export["export_dir"], None, "fvd4_9f", progress=False)
    with pytest.raises(ConfigError, match="unknown or impossible metric 'wrong'"):
        evaluate.evaluate_generator(tiny_export["export_dir"], None, "wrong", progress=False)
