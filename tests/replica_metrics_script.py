"""Run by test_metrics_replicas.py in a subprocess: logical CPU devices must be configured before TensorFlow
initialises, which the pytest process has already done.

    python tests/replica_metrics_script.py OUT_DIR

Splits the CPU into 2 logical devices, exports a tiny generator, and evaluates it against a fixed real set with
no strategy (the host path), MirroredStrategy over 1 device and over 2 devices (dvdgan-eval's path, ``evaluate_generator``), and with the
training-time MetricsMonitor over 1 and 2 devices; also computes the same metrics directly (no strategy, no
chunks: every clip through the networks in one batch, numpy moments). Prints one JSON object.

The metric network is a tiny Keras ``VideoClassifier`` (Conv3D + pooling + Dense) instead of the built-in I3D:
I3D at 224x224 costs seconds per clip on 2 CPU cores, and what is under test is the machinery around the network
(chunking, replicas, moment merging), which is the same for any network.
"""
import json
import os
import sys

import tensorflow as tf

CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from dvdgan_tf.data.synthetic import moving_shapes  # noqa: E402
from dvdgan_tf.metrics import classifiers, evaluate, frechet, inception_score, preprocess  # noqa: E402
from dvdgan_tf.nets.generator import Generator  # noqa: E402
from dvdgan_tf.training.monitors import MetricsMonitor  # noqa: E402
from test_cli_eval import TinyExport  # noqa: E402  (this folder is on sys.path: the script's own)

METRICS = "fvd10_9f,fid10_9f,is20_9f"
BATCH = 4  # clips per replica: 20 generated clips = 5 chunks, so with 2 replicas one idles in the last round;
# 10 real clips (of 11, in batches of 3) = chunks of 4, 4, 2 (+2 padding rows, dropped)


def tiny_classifier():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, 16, 16, 3))
    hidden = keras.layers.Conv3D(6, 3, strides=2, activation="relu")(inputs)
    features = keras.layers.GlobalAveragePooling3D()(hidden)
    logits = keras.layers.Dense(5)(features)
    model = keras.Model(inputs, [logits, features])

    def tensors(videos):
        out = model(videos)
        return {"logits": out[0], "features": out[1]}

    def host(videos):
        return {k: v.numpy() for k, v in tensors(tf.convert_to_tensor(videos)).items()}

    return classifiers.VideoClassifier(host, "tiny-keras", has_features=True, input_size=16, min_frames=1,
                                       batch_size=64, tensor_fn=tensors)


def main(out_dir):
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2, devices
    net = tiny_classifier()
    g = Generator(3, 9, 16, ch=4, channel_multipliers=(4, 2, 2), attention_resolutions=(8,))
    g(tf.zeros([1, g.z_dim]), tf.zeros([1], tf.int32))
    export_dir = os.path.join(out_dir, "export")
    # dvdgan-eval's signature contract in a minimal SavedModel (export_generator traces 3 signatures: 6 s)
    module = TinyExport(g)
    tf.saved_model.save(module, export_dir, signatures={"serving_default": module.serve.get_concrete_function()})
    real = np.random.default_rng(0).integers(0, 256, (11, 9, 16, 16, 3), dtype=np.uint8)
    real_batches = [(real[i:i + 3], np.zeros(len(real[i:i + 3]), np.int32)) for i in range(0, 11, 3)]
    result = {}
    for n in (0, 1, 2):  # 0: no strategy (the host path)
        strategy = tf.distribute.MirroredStrategy(devices[:n]) if n else None
        record = evaluate.evaluate_generator(export_dir, real_batches, METRICS, i3d=net, seed=5, batch_size=BATCH,
                                             progress=False, strategy=strategy)
        monitor = MetricsMonitor(g, moving_shapes, os.path.join(out_dir, f"run{n}"), METRICS, "config", seed=5,
                                 batch_size=BATCH, i3d_handle=net, strategy=strategy)
        result[f"eval_{n}"] = dict(record["metrics"], replicas=record["replicas"])
        result[f"monitor_{n}"] = monitor.measure(1)

    # Directly: the same clips (clip_inputs), all at once through the export and the network, moments in numpy.
    loaded = evaluate.load_export(export_dir)
    z, labels = evaluate.clip_inputs(0, 20, g.z_dim, 3, seed=5)
    videos = loaded.signatures["serving_default"](z=tf.constant(z), label=tf.constant(labels),
                                                  truncation=tf.constant(0.0))["video"]
    fake = net.outputs(videos)
    true = net.outputs(preprocess.to_network_input(real[:10], 16))
    result["direct"] = {
        "fvd10_9f": frechet.frechet_distance_from_activations(true["logits"], fake["logits"][:10]),
        "fid10_9f": frechet.frechet_distance_from_activations(true["features"], fake["features"][:10]),
        "is20_9f": inception_score.inception_score(fake["logits"], 10)[0]}
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
