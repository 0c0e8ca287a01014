"""Training-time evaluation with the named metrics, on a tiny generator and the embedded data."""
import json
import os

import tensorflow as tf

from dvdgan_tf.data.synthetic import moving_shapes
from dvdgan_tf.nets.generator import Generator
from dvdgan_tf.training.monitors import MetricsMonitor


def test_metrics_monitor_writes_named_metrics(tmp_path):
    g = Generator(3, 9, 16, ch=4, channel_multipliers=(4, 2, 2), attention_resolutions=(8,))
    monitor = MetricsMonitor(g, moving_shapes, str(tmp_path), ["fvd4_9f", "is10_9f"], "config text", seed=0,
                             batch_size=4)
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        first = monitor.measure(3)
        again = monitor.measure(4)
    assert set(first) == {"fvd4_9f", "is10_9f", "is10_9f_std"}
    assert first["fvd4_9f"] > 0 and 1.0 <= first["is10_9f"] <= 10.0
    assert first == again  # same z, labels and real clips each time: only the generator's weights move it
    with open(tmp_path / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records] == [3, 4]
    assert records[0]["protocols"]["fvd4_9f"]["num_samples"] == 4 and "i3d" in records[0]["networks"]
    assert os.listdir(tmp_path / "stats")  # real statistics cached for the next evaluation


def test_metrics_monitor_also_scores_the_live_generator_on_the_same_clips(tmp_path):
    """live_generator: the same metrics of the same z and labels for the live G. The EMA generator itself as
    the 'live' one must give exactly its own values; another generator other values."""
    g = Generator(3, 9, 16, ch=4, channel_multipliers=(4, 2, 2), attention_resolutions=(8,))
    other = Generator(3, 9, 16, ch=4, channel_multipliers=(4, 2, 2), attention_resolutions=(8,))
    for live, same in ((g, True), (other, False)):
        folder = tmp_path / ("same" if same else "other")
        monitor = MetricsMonitor(g, moving_shapes, str(folder), ["fvd4_9f"], "config text", seed=0, batch_size=4,
                                 live_generator=live)
        with tf.summary.create_file_writer(str(folder)).as_default():
            values = monitor.measure(5)
        with open(folder / "metrics.jsonl") as f:
            record = json.loads(f.readline())
        assert record["values"] == values
        assert (record["live_values"] == values) == same, record
