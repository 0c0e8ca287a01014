"""dvdgan-eval on a tiny exported generator (built here with the export contract's signature) and the real I3D:
the JSON record, the real-statistics cache, and clean errors (exit 2, no traceback)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.errors import DataError
from dvdgan_tf.nets.generator import Generator
from dvdgan_tf.metrics import classifiers, evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TinyExport(tf.Module):
    """The generator export contract: serving_default(z [B, 120], label [B], truncation []) -> video, video_uint8."""

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


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """A 3-class generator of 9-frame 16x16 clips, exported; plus an npz of 6 real uint8 clips."""
    folder = tmp_path_factory.mktemp("eval")
    g = Generator(num_classes=3, num_frames=9, resolution=16, ch=4, channel_multipliers=(4, 2, 2),
                  attention_resolutions=(8,))
    g(tf.zeros([1, 120]), tf.zeros([1], tf.int32))
    module = TinyExport(g)
    export_dir = str(folder / "export")
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve.get_concrete_function()})
    real = np.random.default_rng(0).integers(0, 256, (6, 9, 16, 16, 3), dtype=np.uint8)
    np.savez(folder / "real.npz", videos=real)
    return {"export_dir": export_dir, "npz": str(folder / "real.npz"), "folder": folder}


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
                      "--batch_size=5", "--seed=3")
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    assert record == json.loads(result.stdout)
    assert set(record["metrics"]) == {"fvd4_9f", "is10_9f", "is10_9f_std"}
    assert record["metrics"]["fvd4_9f"] > 0 and 1.0 <= record["metrics"]["is10_9f"] <= 400
    assert record["protocols"]["fvd4_9f"]["num_samples"] == 4 and record["num_classes"] == 3
    assert record["networks"]["i3d"].startswith("i3d-kinetics-400:")
    assert record["dataset"].startswith("npz:") and len(list(cache.glob("fvd4_9f-*.npz"))) == 1
    # the same evaluation in-process, with no real data at all: the cached statistics give the same FVD
    again = evaluate.evaluate_generator(tiny_export["export_dir"], None, "fvd4_9f", seed=3, batch_size=5,
                                        stats_cache_dir=str(cache), dataset_key=record["dataset"], progress=False)
    assert again["metrics"]["fvd4_9f"] == pytest.approx(record["metrics"]["fvd4_9f"], rel=1e-5)


def test_errors_exit_2_without_traceback(tiny_export, tmp_path):
    result = run_eval(f"--export_dir={tiny_export['export_dir']}", f"--real_npz={tiny_export['npz']}",
                      f"--stats_cache_dir={tmp_path}", "--metrics=fvd4_16f")
    assert result.returncode == 2, result.stderr
    assert "dvdgan-eval: error: the generator makes 9-frame clips" in result.stderr
    assert "fvd2048_9f" in result.stderr and "Traceback" not in result.stderr


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
