"""export: restoring G_ema from a run's checkpoints, the SavedModel's signatures in a process without dvdgan_tf
(tf.saved_model.load and hub.load), its input checks and truncation, and atomic writes."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.export import saved_model as export
from dvdgan_tf.errors import ConfigError, DataError
from dvdgan_tf.nets import truncation
from dvdgan_tf.nets.generator import sample_latents
from dvdgan_tf.nets import standing_stats
from dvdgan_tf.training import monitors, run_dir

# Runs in a fresh interpreter, outside the repository, with dvdgan_tf not on the path: argv = export dir,
# inputs .npz, outputs .npz. Writes the outputs and prints a JSON report.
CONSUMER = r'''
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_hub as hub

export_dir, inputs_path, outputs_path = sys.argv[1:]
inputs = np.load(inputs_path)
z, labels = tf.constant(inputs["z"]), tf.constant(inputs["labels"])
model = tf.saved_model.load(export_dir)
serve = model.signatures["serving_default"]
out = serve(z=z, label=labels, truncation=tf.constant(0.0))
hub_out = hub.load(export_dir).signatures["serving_default"](z=z, label=labels, truncation=tf.constant(0.0))
call_out = model(z, labels, tf.constant(0.0))
clipped = serve(z=tf.clip_by_value(z, -0.5, 0.5), label=labels, truncation=tf.constant(0.0))
truncated = serve(z=z, label=labels, truncation=tf.constant(0.5))
negative = serve(z=z, label=labels, truncation=tf.constant(-1.0))
sample = model.signatures["sample"](batch_size=tf.constant(3), label=tf.constant([1]),
                                    truncation=tf.constant(0.7), seed=tf.constant(11),
                                    truncation_convention=tf.constant("resample"))
sample_check = serve(z=sample["z"], label=tf.constant([1, 1, 1]), truncation=tf.constant(0.7))
latents = {name: model.signatures["latents"](batch_size=tf.constant(3), truncation=tf.constant(0.7),
                                             seed=tf.constant(11), truncation_convention=tf.constant(name))["z"]
           for name in ("resample", "scaled")}
try:
    model.signatures["latents"](batch_size=tf.constant(3), truncation=tf.constant(0.7), seed=tf.constant(11),
                                truncation_convention=tf.constant("clip"))
    convention_error = None
except tf.errors.InvalidArgumentError as e:
    convention_error = e.message

def error(**kwargs):
    args = dict(z=z, label=labels, truncation=tf.constant(0.0))
    args.update(kwargs)
    try:
        serve(**args)
    except tf.errors.InvalidArgumentError as e:
        return e.message
    return None

report = {
    "outputs": {k: [v.shape.as_list(), v.dtype.name] for k, v in out.items()},
    "sample_outputs": {k: [v.shape.as_list(), v.dtype.name] for k, v in sample.items()},
    "signatures": sorted(model.signatures.keys()),
    "metadata": {k: getattr(model, k).numpy().item() for k in ("num_classes", "num_frames", "resolution",
                                                               "z_dim", "step")},
    "truncation_convention": model.truncation_convention.numpy().decode(),
    "truncated_outputs": [truncated["truncation"].numpy().item(), truncated["truncation_convention"].numpy().decode()],
    "convention_error": convention_error,
    "config_has_G": "G.ch = 4" in model.config.numpy().decode(),
    "assets": sorted(a.asset_path.numpy().decode().rsplit("/", 1)[-1] for a in model.assets),
    "wrong_z_error": error(z=tf.zeros([2, 100])),
    "label_error": error(label=tf.constant([0, 3])),
    "negative_label_error": error(label=tf.constant([-1, 0])),
    "label_count_error": error(label=tf.constant([0])),
    "dvdgan_tf_imported": any(m.split(".")[0] == "dvdgan_tf" for m in sys.modules),
}
np.savez(outputs_path, video=out["video"], uint8=out["video_uint8"], hub=hub_out["video"],
         call=call_out["video"], clipped=clipped["video"], truncated=truncated["video"], negative=negative["video"],
         sample_z=sample["z"], sample_video=sample["video"], sample_check=sample_check["video"],
         latents=latents["resample"], latents_scaled=latents["scaled"])
print(json.dumps(report))
'''


@pytest.fixture(scope="module")
def exported(tiny_run_dir, tmp_path_factory):
    """The tiny run's latest checkpoint (step 10) exported with export_checkpoint."""
    path, step = run_dir.export_checkpoint(tiny_run_dir["model_dir"],
                                          str(tmp_path_factory.mktemp("exports") / "latest"))
    return path, step


@pytest.fixture(scope="module")
def consumer(exported, tiny_run_dir, tmp_path_factory):
    """Runs CONSUMER on the export in a fresh process without dvdgan_tf; returns (report, outputs)."""
    folder = tmp_path_factory.mktemp("consumer")
    (folder / "consumer.py").write_text(CONSUMER)
    np.savez(folder / "inputs.npz", z=tiny_run_dir["z"], labels=tiny_run_dir["labels"])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "consumer.py", exported[0], "inputs.npz", "outputs.npz"],
                            cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1]), dict(np.load(folder / "outputs.npz"))


def test_export_loads_without_dvdgan_tf_with_documented_outputs(consumer, tiny_run_dir):
    report, outputs = consumer
    assert not report["dvdgan_tf_imported"]
    assert report["signatures"] == ["latents", "sample", "serving_default"]
    truncation_outputs = {"truncation": [[], "float32"], "truncation_convention": [[], "string"]}
    assert report["outputs"] == {"video": [[2, 3, 16, 16, 3], "float32"], "video_uint8": [[2, 3, 16, 16, 3], "uint8"],
                                 **truncation_outputs}
    assert report["sample_outputs"] == {"video": [[3, 3, 16, 16, 3], "float32"],
                                        "video_uint8": [[3, 3, 16, 16, 3], "uint8"], "z": [[3, 120], "float32"],
                                        **truncation_outputs}
    assert report["metadata"] == {"num_classes": 3, "num_frames": 3, "resolution": 16, "z_dim": 120, "step": 10}
    assert report["config_has_G"] and report["assets"] == ["dvdgan_export.json", "operative_config.gin"]
    video = outputs["video"]
    assert -1.0 <= video.min() < video.max() <= 1.0
    # The documented round((x + 1) * 127.5), in float32 as the export computes it: in float64 a value a float32
    # rounding step away from k + 0.5 can round the other way (it did once: the fixture's weights are random).
    expected = np.round((video.astype(np.float32) + np.float32(1)) * np.float32(127.5))
    np.testing.assert_array_equal(outputs["uint8"], expected)


def test_export_matches_the_checkpointed_ema_generator(consumer, tiny_run_dir):
    _, outputs = consumer
    reference = tiny_run_dir["videos"][10]  # G_ema's output when the step-10 checkpoint was written
    for key in ("video", "hub", "call"):
        np.testing.assert_allclose(outputs[key], reference, atol=1e-5)


def test_export_input_errors_name_the_expected_sizes(consumer):
    report, _ = consumer
    assert "z must be shaped [batch, 120]" in report["wrong_z_error"]
    assert "[2 100]" in report["wrong_z_error"]
    for key in ("label_error", "negative_label_error"):
        assert "label must hold class indices in [0, 3)" in report[key]
    assert "label must be shaped [batch]" in report["label_count_error"]


def test_export_truncation(consumer):
    report, outputs = consumer
    # serving_default takes z as given whatever the truncation value (it used to clip z to [-t, t], which is
    # neither of BigGAN's conventions: it put point masses at +-t); it records the value and the convention.
    np.testing.assert_array_equal(outputs["truncated"], outputs["video"])
    assert np.abs(outputs["clipped"] - outputs["video"]).max() > 1e-3  # clipping would have shown (|z| > 0.5 occurs)
    np.testing.assert_array_equal(outputs["negative"], outputs["video"])
    # 0.5 lies halfway between the stored 0 and 1 (export_generator's default): the smaller one's statistics.
    assert report["truncated_outputs"] == [0.0, "resample"] and report["truncation_convention"] == "resample"
    # sample / latents draw z with the shared function, for each convention.
    z = outputs["sample_z"]
    np.testing.assert_array_equal(z, truncation.latents([3, 120], tf.constant([11, 0]), "resample", 0.7).numpy())
    np.testing.assert_array_equal(z, sample_latents(3, 120, 0.7, seed=tf.constant([11, 0])).numpy())
    np.testing.assert_array_equal(outputs["latents"], z)
    np.testing.assert_array_equal(outputs["latents_scaled"],
                                  truncation.latents([3, 120], tf.constant([11, 0]), "scaled", 0.7).numpy())
    assert 0.7 < np.abs(outputs["latents_scaled"]).max() <= 1.4
    np.testing.assert_allclose(outputs["sample_video"], outputs["sample_check"], atol=1e-6)
    assert "truncation_convention must be resample or scaled" in report["convention_error"]


def test_training_samples_equal_the_exports_videos(exported, loaded, tiny_run_dir, tmp_path):
    """The sample grid of training (SampleWriter: the EMA generator, its z drawn with the run's truncation) and
    the export's serving_default give the same videos for the same z, labels and truncation, when G_ema's
    standing statistics are those of the stored truncation nearest the value (1.0 of the default 0 and 1)."""
    # standing=True: the export's G_ema, with the standing statistics export_checkpoint gives it (seeded, the same).
    generator, _ = run_dir.restore_ema_generator(tiny_run_dir["model_dir"], step=exported[1], standing=True)
    # The export's statistics for truncation 1.0 (its convention, 'resample'; the run's seed 0 and the step).
    standing_stats.recompute(generator, seed=0, step=exported[1], truncation=1.0, convention="resample")
    for convention, value in (("scaled", 0.8), ("resample", 0.6)):
        writer = monitors.SampleWriter(generator, str(tmp_path), samples_per_class=2, max_classes=3, seed=5,
                                       truncation_convention=convention, truncation=value)
        np.testing.assert_array_equal(writer.z.numpy(), truncation.latents(
            [6, 120], tf.constant([5, 4242]), convention, value).numpy())
        served = loaded.signatures["serving_default"](z=writer.z, label=writer.labels,
                                                      truncation=tf.constant(value))
        np.testing.assert_allclose(served["video"].numpy(), writer.videos().numpy(), rtol=0, atol=1e-6)
        assert served["truncation"].numpy() == np.float32(1.0)


def test_sample_videos_draws_z_with_the_shared_function(loaded):
    """dvdgan-sample's path: z from the export's latents signature is truncation.latents' for the convention."""
    for convention, value in (("scaled", 0.5), ("resample", 0.5), ("resample", 0.0)):
        videos = export.sample_videos(loaded, 2, 3, value, seed=9, batch_size=2, convention=convention)
        z = truncation.latents([3, 120], tf.constant([9, 0]), convention, value)
        expected = loaded.signatures["serving_default"](z=z, label=tf.constant([2, 2, 2]),
                                                        truncation=tf.constant(value))["video_uint8"].numpy()
        np.testing.assert_array_equal(videos, expected)
    old = type("OldExport", (), {})()  # an export without truncation_convention metadata clips z to [-t, t]
    assert export.check_truncation(old, "resample", 0.5) == ("resample", 0.5)
    with pytest.raises(ConfigError, match="predates truncation conventions"):
        export.check_truncation(old, "scaled", 0.5)
    with pytest.raises(ConfigError, match="finite number >= 0"):
        export.sample_videos(loaded, 0, 1, -1.0)


@pytest.fixture(scope="module")
def restored_step_5(tiny_run_dir):
    return run_dir.restore_ema_generator(tiny_run_dir["model_dir"], 5)


def test_restore_picks_the_requested_step(tiny_run_dir, restored_step_5, exported):
    z, labels, videos = tf.constant(tiny_run_dir["z"]), tf.constant(tiny_run_dir["labels"]), tiny_run_dir["videos"]
    assert np.abs(videos[5] - videos[10]).max() > 1e-2
    generator, step = restored_step_5
    assert step == 5
    np.testing.assert_allclose(generator(z, labels).numpy(), videos[5], atol=1e-5)
    assert exported[1] == 10  # the default, restored by export_checkpoint (its outputs: the consumer tests)
    assert sorted(run_dir.list_checkpoints(tiny_run_dir["model_dir"])) == [5, 10]


def test_restore_errors_name_what_is_missing(tiny_run_dir, tmp_path):
    with pytest.raises(DataError, match="no checkpoint in"):
        run_dir.restore_ema_generator(str(tmp_path))
    with pytest.raises(DataError, match="no checkpoint for step 7 .*available steps: 5, 10"):
        run_dir.restore_ema_generator(tiny_run_dir["model_dir"], 7)


def test_export_is_atomic_and_keeps_the_previous_export_on_a_crash(exported, restored_step_5, monkeypatch, tmp_path):
    previous = tmp_path / "export"
    shutil.copytree(exported[0], previous)
    with open(previous / "saved_model.pb", "rb") as f:
        previous_graph = f.read()
    generator, _ = restored_step_5

    def crash(module, folder, **kwargs):
        with open(os.path.join(folder, "saved_model.pb"), "wb") as f:
            f.write(b"half written")
        raise RuntimeError("simulated crash while saving")

    monkeypatch.setattr(tf.saved_model, "save", crash)
    for target in (previous, tmp_path / "new"):
        with pytest.raises(RuntimeError, match="simulated crash"):
            export.export_generator(generator, str(target), step=5, standing_truncations=None)
    assert sorted(os.listdir(tmp_path)) == ["export"]  # no partial or temporary folder left
    with open(previous / "saved_model.pb", "rb") as f:
        assert f.read() == previous_graph


def test_load_export_of_a_folder_without_saved_model(tmp_path):
    with pytest.raises(DataError, match="is not a SavedModel export"):
        export.load_export(str(tmp_path))


def test_export_refuses_to_replace_a_folder_that_is_not_an_export(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a SavedModel export: refusing to replace it"):
        export.export_generator(object(), str(tmp_path))
    assert os.listdir(tmp_path) == ["notes.txt"]


@pytest.fixture(scope="module")
def loaded(exported):
    """The export loaded in this process (its signatures use nothing of dvdgan_tf)."""
    return tf.saved_model.load(exported[0])


def test_batch_0_returns_empty_outputs_of_the_right_shape(loaded):
    serve = loaded.signatures["serving_default"]
    out = serve(z=tf.zeros([0, 120]), label=tf.zeros([0], tf.int32), truncation=tf.constant(0.0))
    assert out["video"].shape == (0, 3, 16, 16, 3) and out["video"].dtype == tf.float32
    assert out["video_uint8"].shape == (0, 3, 16, 16, 3) and out["video_uint8"].dtype == tf.uint8
    sample = loaded.signatures["sample"](batch_size=tf.constant(0), label=tf.constant([1]),
                                         truncation=tf.constant(0.0), seed=tf.constant(0),
                                         truncation_convention=tf.constant("resample"))
    assert sample["z"].shape == (0, 120) and sample["video"].shape == (0, 3, 16, 16, 3)
    assert loaded.signatures["latents"](batch_size=tf.constant(0), truncation=tf.constant(0.0), seed=tf.constant(0),
                                        truncation_convention=tf.constant("scaled"))["z"].shape == (0, 120)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e30, -101.0])
def test_non_finite_or_huge_z_is_refused(loaded, tiny_run_dir, bad):
    z = tiny_run_dir["z"].copy()
    z[1, 7] = bad
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"z must be finite with \|z\| <= 100 "):
        loaded.signatures["serving_default"](z=tf.constant(z), label=tf.constant(tiny_run_dir["labels"]),
                                             truncation=tf.constant(0.0))


def test_z_at_the_limit_still_gives_a_finite_video(loaded, tiny_run_dir):
    z = np.full_like(tiny_run_dir["z"], 100.0)
    z[0] *= -1
    out = loaded.signatures["serving_default"](z=tf.constant(z), label=tf.constant(tiny_run_dir["labels"]),
                                              truncation=tf.constant(0.0))
    assert np.isfinite(out["video"].numpy()).all()
    assert np.abs(out["video"].numpy()).max() <= 1.0


def test_load_export_of_a_damaged_saved_model_is_one_clear_error(exported, tmp_path):
    for damage in ("garbage", "truncated", "no_variables"):
        folder = tmp_path / damage
        shutil.copytree(exported[0], folder)
        graph = folder / "saved_model.pb"
        if damage == "garbage":
            graph.write_bytes(b"this is not a protocol buffer \xff\xfe" * 10)
        elif damage == "truncated":
            graph.write_bytes(graph.read_bytes()[:1000])
        else:
            shutil.rmtree(folder / "variables")
        with pytest.raises(DataError, match="holds a damaged SavedModel that cannot be loaded .*export it again"):
            export.load_export(str(folder))


def test_a_non_finite_video_is_an_error_not_an_output():
    """A generator that overflows (simulated: it returns NaN) makes the signature fail instead of returning a NaN
    video with an all-zero video_uint8."""

    class NanGenerator:
        num_classes, num_frames, resolution, z_dim, variables = 2, 1, 2, 3, []

        def __call__(self, z, label, training=False):
            return tf.fill([tf.shape(z)[0], 1, 2, 2, 3], np.float32(np.nan))

    module = export.GeneratorExport(NanGenerator())
    with pytest.raises(tf.errors.InvalidArgumentError, match="the generator produced non-finite values"):
        module.__call__(tf.zeros([2, 3]), tf.constant([0, 1]), tf.constant(0.0))


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_export_folder_and_files_get_the_permissions_of_the_umask(restored_step_5, tmp_path, mask):
    """export/<step>/ was 0700 whatever the umask: every folder and file of an export is now created as mkdir and
    open() would create it (0o777 / 0o666 & ~umask)."""
    generator, _ = restored_step_5
    old = os.umask(mask)
    try:
        path = export.export_generator(generator, str(tmp_path / "export" / "5"), step=5, standing_truncations=None)
    finally:
        os.umask(old)
    modes = {}
    for root, dirs, names in os.walk(path):
        for name in dirs + names:
            full = os.path.join(root, name)
            modes[os.path.relpath(full, path)] = (os.path.isdir(full), os.stat(full).st_mode & 0o777)
    assert {"saved_model.pb", "variables", "assets", os.path.join("assets", "dvdgan_export.json")} <= set(modes)
    for is_dir, mode in list(modes.values()) + [(True, os.stat(path).st_mode & 0o777)]:
        assert oct(mode) == oct((0o777 if is_dir else 0o666) & ~mask)
    assert os.listdir(tmp_path / "export") == ["5"]  # no temporary sibling left


def _moving_statistics(generator):
    return [v.numpy() for layer in standing_stats.batch_norm_layers(generator)
            for v in (layer.moving_mean, layer.moving_variance)]


def test_export_serves_the_standing_statistics_of_the_nearest_stored_truncation(restored_step_5, tiny_run_dir,
                                                                                   tmp_path):
    """Stored values 0 and 0.8 ('scaled'): serving_default at t uses the statistics that standing_stats.recompute
    gives at the nearest stored value (ties: the smaller) and says which; the exported generator is unchanged."""
    generator, _ = restored_step_5
    before = _moving_statistics(generator)
    path = export.export_generator(generator, str(tmp_path / "e"), step=5, truncation_convention="scaled",
                                   standing_truncations=(0.8, 0.0), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(before, _moving_statistics(generator)))
    model = tf.saved_model.load(path)
    np.testing.assert_array_equal(model.standing_truncations.numpy(), np.float32([0.0, 0.8]))
    z, labels = tf.constant(tiny_run_dir["z"]), tf.constant(tiny_run_dir["labels"])
    expected = {}
    try:
        for value in (0.0, 0.8):
            standing_stats.recompute(generator, seed=3, step=5, truncation=value, convention="scaled")
            expected[value] = generator(z, labels, training=False).numpy()
    finally:
        for variable, value in zip([v for layer in standing_stats.batch_norm_layers(generator)
                                    for v in (layer.moving_mean, layer.moving_variance)], before):
            variable.assign(value)
    assert np.abs(expected[0.0] - expected[0.8]).max() > 1e-3  # the two sets of statistics do differ
    serve = model.signatures["serving_default"]
    for asked, nearest in ((0.0, 0.0), (0.8, 0.8), (0.3, 0.0), (0.4, 0.0), (0.5, 0.8), (2.0, 0.8), (-1.0, 0.0)):
        out = serve(z=z, label=labels, truncation=tf.constant(asked))
        np.testing.assert_allclose(out["video"].numpy(), expected[nearest], rtol=1e-5, atol=1e-6)
        assert out["truncation"].numpy() == np.float32(nearest), asked
        assert out["truncation_convention"].numpy() == b"scaled"
    sample = model.signatures["sample"](batch_size=tf.constant(2), label=tf.constant([1]),
                                        truncation=tf.constant(0.7), seed=tf.constant(2),
                                        truncation_convention=tf.constant("scaled"))
    assert sample["truncation"].numpy() == np.float32(0.8)
    np.testing.assert_allclose(sample["video"].numpy(), serve(z=sample["z"], label=tf.constant([1, 1]),
                                                              truncation=tf.constant(0.8))["video"].numpy(),
                               rtol=1e-5, atol=1e-6)
    with open(os.path.join(path, "assets", export.METADATA_FILE), encoding="utf-8") as f:
        assert json.load(f)["standing_truncations"] == [0.0, 0.8]


def test_an_export_without_stored_statistics_still_samples(restored_step_5, tiny_run_dir, tmp_path):
    """An export as written before stored statistics (none stored: the generator's own serve every truncation,
    and the truncation output is the value asked for) still works with sample_videos (dvdgan-sample/-eval)."""
    generator, _ = restored_step_5
    model = tf.saved_model.load(export.export_generator(generator, str(tmp_path / "e"), step=5,
                                                        standing_truncations=None))
    assert not hasattr(model, "standing_truncations")
    videos = export.sample_videos(model, 1, 2, 0.5, seed=4, batch_size=2)
    z = truncation.latents([2, 120], tf.constant([4, 0]), "resample", 0.5)
    expected = np.round((generator(z, tf.constant([1, 1]), training=False).numpy() + 1) * 127.5)
    assert np.abs(videos.astype(np.float64) - expected).max() <= 1
    out = model.signatures["serving_default"](z=z, label=tf.constant([1, 1]), truncation=tf.constant(0.5))
    assert out["truncation"].numpy() == np.float32(0.5)
