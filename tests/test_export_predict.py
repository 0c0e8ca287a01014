"""The export of a prediction model (DVD-GAN-FP, G.context_frames > 0): its ``predict`` signature in a process
without dvdgan_tf, the context checks, the metadata recording C and T, the standing statistics it stores, sampling
it (predict_videos), and dvdgan-eval's prediction FVD of it (a stand-in network for I3D)."""
import json
import os
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.errors import ConfigError
from dvdgan_tf.export import saved_model as export
from dvdgan_tf.metrics import evaluate
from dvdgan_tf.nets import generator as generator_lib
from dvdgan_tf.nets import standing_stats

from test_metrics_evaluate import fake_i3d

CONTEXT, FRAMES, RES, CLASSES = 2, 9, 16, 2
SCOPE = "tiny_prediction_test"  # gin scope of the tiny encoder's settings: nothing outside it sees them


def tiny_prediction_generator(seed=0):
    """A built 2-class generator continuing 2 context frames to 9-frame 16x16 clips (tiny widths), with BN
    moving statistics that are not the initial 0 / 1 (as a trained G_ema's)."""
    with gin.unlock_config():
        for name, value in (("ch", 4), ("channels", 8), ("channel_multipliers", (2, 4))):
            gin.bind_parameter(f"{SCOPE}/Encoder.{name}", value)
    tf.keras.utils.set_random_seed(seed)
    with gin.config_scope(SCOPE):
        g = generator_lib.Generator(CLASSES, FRAMES, RES, ch=4, channel_multipliers=(4, 2, 2),
                                    attention_resolutions=(8,), context_frames=CONTEXT)
    rng = np.random.default_rng(seed)
    g(tf.zeros([1, 120]), tf.zeros([1], tf.int32), context=tf.zeros([1, CONTEXT, RES, RES, 3]))
    for layer in standing_stats.batch_norm_layers(g):
        layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape).astype(np.float32))
        layer.moving_variance.assign(rng.uniform(0.5, 1.5, layer.moving_variance.shape).astype(np.float32))
    return g


def inputs(n=2, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (n, CONTEXT, RES, RES, 3)).astype(np.float32),
            rng.standard_normal((n, 120)).astype(np.float32), np.arange(n, dtype=np.int32) % CLASSES)


@pytest.fixture(scope="module")
def prediction_export(tmp_path_factory):
    """(export dir, the generator, its video for ``inputs()``)."""
    g = tiny_prediction_generator()
    context, z, labels = inputs()
    video = g(tf.constant(z), tf.constant(labels), training=False, context=tf.constant(context)).numpy()
    path = export.export_generator(g, str(tmp_path_factory.mktemp("fp") / "export"), step=7, config_text="# fp",
                                   standing_truncations=(0.0, 1.0))
    return path, g, video


@pytest.fixture(scope="module")
def loaded(prediction_export):
    return export.load_export(prediction_export[0])


# Runs in a fresh interpreter outside the repository, dvdgan_tf not importable: argv = export dir, inputs, outputs.
CONSUMER = r'''
import json, sys
import numpy as np
import tensorflow as tf

export_dir, inputs_path, outputs_path = sys.argv[1:]
inputs = np.load(inputs_path)
context, z, labels = (tf.constant(inputs[k]) for k in ("context", "z", "labels"))
model = tf.saved_model.load(export_dir)
predict = model.signatures["predict"]
out = predict(context=context, z=z, label=labels, truncation=tf.constant(0.0))
default = model.signatures["serving_default"](context=context, z=z, label=labels, truncation=tf.constant(0.0))
called = model(context, z, labels, tf.constant(0.0))
truncated = predict(context=context, z=z, label=labels, truncation=tf.constant(0.7))
empty = predict(context=tf.zeros([0, 2, 16, 16, 3]), z=tf.zeros([0, 120]), label=tf.zeros([0], tf.int32),
                truncation=tf.constant(0.0))

def error(**kwargs):
    args = dict(context=context, z=z, label=labels, truncation=tf.constant(0.0))
    args.update(kwargs)
    try:
        predict(**args)
    except tf.errors.InvalidArgumentError as e:
        return e.message
    return None

nan_context = inputs["context"].copy()
nan_context[0, 1, 3, 3, 0] = np.nan
report = {
    "signatures": sorted(model.signatures.keys()),
    "inputs": sorted(predict.structured_input_signature[1]),
    "outputs": {k: [v.shape.as_list(), v.dtype.name] for k, v in out.items()},
    "empty": [empty["video"].shape.as_list(), empty["video_uint8"].shape.as_list()],
    "metadata": {k: getattr(model, k).numpy().item() for k in ("context_frames", "num_frames", "resolution",
                                                               "num_classes", "z_dim", "step")},
    "truncated": [truncated["truncation"].numpy().item(), truncated["truncation_convention"].numpy().decode()],
    "wrong_frames": error(context=tf.zeros([2, 3, 16, 16, 3])),
    "wrong_size": error(context=tf.zeros([2, 2, 8, 8, 3])),
    "wrong_rank": error(context=tf.zeros([2, 2, 16, 16])),
    "wrong_batch": error(context=tf.zeros([3, 2, 16, 16, 3])),
    "pixel_values": error(context=tf.fill([2, 2, 16, 16, 3], 255.0)),
    "nan": error(context=tf.constant(nan_context)),
    "wrong_z": error(z=tf.zeros([2, 100])),
    "wrong_label": error(label=tf.constant([0, 2])),
    "dvdgan_tf_imported": any(m.split(".")[0] == "dvdgan_tf" for m in sys.modules),
}
np.savez(outputs_path, video=out["video"], uint8=out["video_uint8"], default=default["video"],
         called=called["video"], truncated=truncated["video"])
print(json.dumps(report))
'''


@pytest.fixture(scope="module")
def consumer(prediction_export, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fp_consumer")
    (folder / "consumer.py").write_text(CONSUMER)
    context, z, labels = inputs()
    np.savez(folder / "inputs.npz", context=context, z=z, labels=labels)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "consumer.py", prediction_export[0], "inputs.npz", "outputs.npz"],
                            cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1]), dict(np.load(folder / "outputs.npz"))


def test_predict_loads_without_dvdgan_tf_and_returns_the_whole_clip(consumer, prediction_export):
    report, outputs = consumer
    assert not report["dvdgan_tf_imported"]
    assert report["signatures"] == ["latents", "predict", "serving_default"]
    assert report["inputs"] == ["context", "label", "truncation", "z"]
    assert report["outputs"] == {"video": [[2, 9, 16, 16, 3], "float32"], "video_uint8": [[2, 9, 16, 16, 3], "uint8"],
                                 "truncation": [[], "float32"], "truncation_convention": [[], "string"]}
    assert report["empty"] == [[0, 9, 16, 16, 3], [0, 9, 16, 16, 3]]
    assert report["metadata"] == {"context_frames": 2, "num_frames": 9, "resolution": 16, "num_classes": 2,
                                  "z_dim": 120, "step": 7}
    context = inputs()[0]
    np.testing.assert_array_equal(outputs["video"][:, :CONTEXT], context)  # the context, copied in
    np.testing.assert_allclose(outputs["video"], prediction_export[2], atol=1e-5)  # G with its statistics
    for key in ("default", "called"):
        np.testing.assert_array_equal(outputs[key], outputs["video"])
    expected = np.round((outputs["video"].astype(np.float32) + np.float32(1)) * np.float32(127.5))
    np.testing.assert_array_equal(outputs["uint8"], expected)
    # One set of statistics is stored (value 0): every truncation uses it and says so.
    assert report["truncated"] == [0.0, "resample"]
    np.testing.assert_array_equal(outputs["truncated"], outputs["video"])


def test_bad_contexts_are_refused_with_the_expected_shape(consumer):
    report, _ = consumer
    expected = "context must be shaped [batch, 2, 16, 16, 3]"
    for key, got in (("wrong_frames", "[2 3 16 16 3]"), ("wrong_size", "[2 2 8 8 3]"), ("wrong_rank", "[2 2 16 16]")):
        assert expected in report[key] and got in report[key], report[key]
    assert "one clip per row of z; got] [3] [clips and z rows:] [2]" in report["wrong_batch"]
    for key in ("pixel_values", "nan"):
        assert "context must hold finite values in [-1, 1]" in report[key], report[key]
    assert "z must be shaped [batch, 120]" in report["wrong_z"]
    assert "label must hold class indices in [0, 2)" in report["wrong_label"]


def test_assets_record_c_and_t_and_the_stored_statistics_are_the_generators(prediction_export, loaded):
    path, g, _ = prediction_export
    with open(os.path.join(path, "assets", "dvdgan_export.json"), encoding="utf-8") as f:
        metadata = json.load(f)
    assert (metadata["context_frames"], metadata["predicted_frames"], metadata["num_frames"]) == (2, 7, 9)
    assert metadata["standing_truncations"] == [0.0]  # asked for (0, 1): a prediction model stores its own only
    layers = standing_stats.batch_norm_layers(g)
    assert len(loaded.standing_means) == len(layers) > 0
    for layer, mean, variance in zip(layers, loaded.standing_means, loaded.standing_variances):
        np.testing.assert_array_equal(mean.numpy(), layer.moving_mean.numpy()[None])
        np.testing.assert_array_equal(variance.numpy(), layer.moving_variance.numpy()[None])


def test_predict_videos_and_sample_videos(prediction_export, loaded):
    g = prediction_export[1]
    assert export.context_frames_of(loaded) == CONTEXT
    context = inputs(1)[0][0]
    videos = export.predict_videos(loaded, context, 1, 3, truncation=0.5, seed=4, batch_size=2)
    z = loaded.signatures["latents"](batch_size=tf.constant(3), truncation=tf.constant(0.5), seed=tf.constant(4),
                                     truncation_convention=tf.constant("resample"))["z"]
    direct = g(z, tf.constant([1, 1, 1]), training=False, context=tf.constant(np.repeat(context[None], 3, 0)))
    assert videos.shape == (3, FRAMES, RES, RES, 3) and videos.dtype == np.uint8
    np.testing.assert_allclose(videos.astype(int), np.round((direct.numpy() + 1) * 127.5), atol=1)
    assert len({v[CONTEXT:].tobytes() for v in videos}) == 3  # different z, different predictions
    with pytest.raises(ConfigError, match="predicts from 2 context frames: sample it with predict_videos"):
        export.sample_videos(loaded, 0, 1)


def test_dvdgan_eval_scores_continuations_of_the_real_clips(prediction_export, tmp_path):
    """evaluate_generator on the export: the same value as the prediction protocol on the generator itself
    (the export's predict signature conditions on the same real clips' contexts with the same z)."""
    path, g, _ = prediction_export
    rng = np.random.default_rng(3)
    real = rng.integers(0, 256, (6, FRAMES, RES, RES, 3)).astype(np.uint8)
    npz = tmp_path / "real.npz"
    np.savez(npz, videos=real)
    from dvdgan_tf.metrics import real_data  # pylint: disable=import-outside-toplevel
    batches, key = real_data.npz_batches(str(npz), 4)
    record = evaluate.evaluate_generator(path, batches, "fvdpred6x2_2c9f", i3d=fake_i3d(), dataset_key=key,
                                         batch_size=4, progress=False, seed=5)
    assert record["context_frames"] == 2 and set(record["metrics"]) == {"fvdpred6x2_2c9f", "fvdpred6x2_2c9f_std"}
    clips = evaluate.PredictedClips(lambda c, z, l: g(z, l, training=False, context=c), 120, CLASSES, CONTEXT,
                                    (FRAMES, RES, RES, 3), seed=5)
    direct = evaluate.compute_metrics(clips, batches, "fvdpred6x2_2c9f", i3d=fake_i3d(), progress=False)
    assert record["metrics"]["fvdpred6x2_2c9f"] == pytest.approx(direct["fvdpred6x2_2c9f"], rel=1e-4)
    assert record["metrics"]["fvdpred6x2_2c9f"] > 0 and record["metrics"]["fvdpred6x2_2c9f_std"] > 0
    with pytest.raises(ConfigError, match="use fvdpred256x1_2c9f"):
        evaluate.evaluate_generator(path, batches, "fvdpred_bair", i3d=fake_i3d(), progress=False)


@pytest.mark.slow  # about 20 s of CPU: a second export and two standing-statistics traces
def test_given_real_contexts_the_export_stores_statistics_per_truncation(tmp_path):
    """With a bank of real contexts (what the training loop keeps for G_ema), the export computes standing
    statistics per truncation value as for synthesis: value 0's are standing_stats.recompute's with that bank."""
    g = tiny_prediction_generator(seed=2)
    rng = np.random.default_rng(4)
    bank = (rng.uniform(-1, 1, (8, CONTEXT, RES, RES, 3)).astype(np.float32), np.array([0, 1] * 4, np.int32))
    with gin.unlock_config():  # small standing passes (2 batches of 4, 2 power iterations), in this test's scope
        gin.bind_parameter(f"{SCOPE}/standing_stats.num_batches", 2)
        gin.bind_parameter(f"{SCOPE}/standing_stats.batch_size", 4)
        gin.bind_parameter(f"{SCOPE}/standing_stats.power_iterations", 2)
    held = [layer.moving_mean.numpy().copy() for layer in standing_stats.batch_norm_layers(g)]
    with gin.config_scope(SCOPE):
        path = export.export_generator(g, str(tmp_path / "export"), step=3, config_text="", seed=1, contexts=bank,
                                       standing_truncations=(0.0, 1.0))
        expected = standing_stats.recompute(g, seed=1, step=3, truncation=0.0, contexts=bank)
    loaded = export.load_export(path)
    np.testing.assert_array_equal(loaded.standing_truncations.numpy(), [0.0, 1.0])
    for layer, mean, before in zip(standing_stats.batch_norm_layers(g), loaded.standing_means, held):
        np.testing.assert_allclose(mean.numpy()[0], expected[layer][0], rtol=1e-5, atol=1e-6)
        assert np.abs(mean.numpy()[0] - before).max() > 1e-3  # not the statistics it held
        assert np.abs(mean.numpy()[1] - mean.numpy()[0]).max() > 0  # truncation 1 has its own
