"""DVD-GAN-FP in training: context + continuation windows from prepared BAIR data, the train step's context
passing, G_ema's standing statistics from a bank of real contexts, the context | prediction | truth grid, and a
tiny run of the loop with the centroid monitor."""
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.data import prepare
from dvdgan_tf.data.pipeline import prepared_videos
from dvdgan_tf.data.sources.bair import BairSource
from dvdgan_tf.data.synthetic import moving_shapes
from dvdgan_tf.nets import standing_stats
from dvdgan_tf.nets.discriminators import SpatialDiscriminator, TemporalDiscriminator
from dvdgan_tf.nets.generator import Generator
from dvdgan_tf.nets.networks import Networks
from dvdgan_tf.training import loop, run_dir
from dvdgan_tf.training.monitors import SampleWriter, prediction_rows
from test_training_loop import tiny_config

STEPS = 30  # BAIR trajectories have 30 steps
ENCODER = {"ch": 4, "channel_multipliers": (1, 2, 2), "channels": 8}


def _write_bair_file(path, seeds):
    """A softmotion30_44k-style file (as tests/test_data_sources_bair.py): per step i, raw 64x64 RGB bytes of
    both cameras; the frames of trajectory `seed` are constant images of value (seed * 7 + i) % 256 in camera
    image_aux1, so a frame tells its trajectory and step."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for seed in seeds:
            feature = {}
            for i in range(STEPS):
                aux = np.full([64, 64, 3], (seed * 7 + i) % 256, np.uint8)
                for view, frame in (("image_aux1", aux), ("image_main", 255 - aux)):
                    feature[f"{i}/{view}/encoded"] = tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[frame.tobytes()]))
                feature[f"{i}/action"] = tf.train.Feature(float_list=tf.train.FloatList(value=[0.1] * 4))
                feature[f"{i}/endeffector_pos"] = tf.train.Feature(float_list=tf.train.FloatList(value=[0.2] * 3))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


@pytest.fixture(scope="module")
def prepared_bair(tmp_path_factory):
    root = tmp_path_factory.mktemp("softmotion30_44k")
    _write_bair_file(str(root / "train" / "traj_0_to_2.tfrecords"), [0, 1, 2])
    _write_bair_file(str(root / "test" / "traj_0_to_1.tfrecords"), [10, 11])
    out = str(tmp_path_factory.mktemp("bair_prepared"))
    prepare.prepare(BairSource(str(root)), out, prepare.Options(resolution=8, frame_format="png"),
                    show_progress=False)
    return out


def _frame_values(video):
    """The stored value (seed * 7 + step) % 256 of each frame of constant-image clips in [-1, 1]."""
    return np.round((video[..., 0].mean(axis=(-2, -1)) + 1) * 127.5).astype(int)


def test_prepared_bair_yields_context_and_continuation_windows(prepared_bair):
    """bair_fp's clip: 16 consecutive frames (frame stride 1) of a 30-frame trajectory, the first the context;
    training windows start anywhere in 0..14, evaluation windows of the test split at the fixed centre 7 or, with
    eval_start='first' (bair_fp.gin), at frame 0."""
    train = prepared_videos(3, 16, 8, 1, training=True, seed=0, data_dir=prepared_bair, eval_split="test")
    starts = set()
    for video, labels in train.take(4):
        assert video.shape == (3, 16, 8, 8, 3) and set(labels.numpy().tolist()) == {0}
        for values in _frame_values(video.numpy()):
            seed, start = next((s, (values[0] - 7 * s) % 256) for s in (0, 1, 2)
                               if 0 <= (values[0] - 7 * s) % 256 <= STEPS - 16)
            np.testing.assert_array_equal(values, (seed * 7 + start + np.arange(16)) % 256)  # consecutive frames
            starts.add(start)
    assert len(starts) > 1
    test = prepared_videos(2, 16, 8, 1, training=False, seed=0, data_dir=prepared_bair, eval_split="test")
    (video, _), = list(test)
    want = [(s * 7 + 7 + np.arange(16)) % 256 for s in (10, 11)]
    assert sorted(map(tuple, _frame_values(video.numpy()))) == sorted(map(tuple, want))
    # bair_fp's evaluation windows: the trajectories' first 16 frames.
    first = prepared_videos(2, 16, 8, 1, training=False, seed=0, data_dir=prepared_bair, eval_split="test",
                            eval_start="first")
    (video, _), = list(first)
    want = [(s * 7 + np.arange(16)) % 256 for s in (10, 11)]
    assert sorted(map(tuple, _frame_values(video.numpy()))) == sorted(map(tuple, want))


def tiny_trainer(**kwargs):
    keras.utils.set_random_seed(0)
    make_g = lambda: Generator(1, 4, 16, ch=4, channel_multipliers=(4, 2, 2), attention_resolutions=(8,),
                               context_frames=2, encoder=ENCODER)
    networks = Networks(make_g(), SpatialDiscriminator(1, 4, 16, ch=4, channel_multipliers=(1, 2), k=2),
                        TemporalDiscriminator(1, 4, 16, ch=4, channel_multipliers=(1, 2)))
    settings = dict(global_batch_size=2, d_steps_per_g_step=1, g_learning_rate=1e-3, d_learning_rate=1e-3,
                    beta_1=0.0, beta_2=0.999, ema_decay=0.5, ema_start_step=0, seed=0, jit_compile=False)
    settings.update(kwargs)
    return loop._build_trainer(tf.distribute.get_strategy(), networks, make_g(), **settings)


def real_batches(batch_size=2):
    return moving_shapes(batch_size, 4, 16, 1, training=True, seed=3)


def test_fake_batch_continues_the_real_contexts_with_their_labels():
    """(The whole train step runs in test_tiny_fp_run_...; gradients reach the encoder: test_nets_encoder.)"""
    trainer = tiny_trainer()
    video, labels = next(iter(real_batches()))
    fake, fake_labels = trainer._fake_batch(tf.constant(0, tf.int64), 0, (video, labels))
    np.testing.assert_array_equal(fake.numpy()[:, :2], video.numpy()[:, :2])
    np.testing.assert_array_equal(fake_labels.numpy(), labels.numpy())
    assert np.abs(fake.numpy()[:, 2:]).max() <= 1.0


def test_standing_statistics_use_the_context_bank():
    trainer = tiny_trainer()
    g = trainer.G_ema
    with pytest.raises(ValueError, match="bank of real contexts"):
        standing_stats.recompute(g, seed=0, step=0, num_batches=2, batch_size=2)
    video, labels = next(iter(real_batches(4)))
    bank = (video.numpy()[:, :2], labels.numpy())
    stats = standing_stats.recompute(g, seed=0, step=0, num_batches=2, batch_size=2, contexts=bank)
    assert all(mean.shape[0] == 2 for mean, _ in stats.values())  # per rendered frame: T - C = 2
    # The statistics are those of the bank's contexts: another bank gives others, the same bank the same.
    again = standing_stats.recompute(g, seed=0, step=0, num_batches=2, batch_size=2, contexts=bank)
    other = standing_stats.recompute(g, seed=0, step=0, num_batches=2, batch_size=2,
                                     contexts=(-bank[0], bank[1]))
    first = next(iter(standing_stats.batch_norm_layers(g)))
    np.testing.assert_array_equal(stats[first][0], again[first][0])
    assert np.abs(stats[first][0] - other[first][0]).max() > 1e-4


def test_sample_grid_rows_are_context_prediction_truth(tmp_path):
    truth = np.random.default_rng(0).uniform(-1, 1, [2, 4, 16, 16, 3]).astype(np.float32)
    predicted = np.random.default_rng(1).uniform(-1, 1, [2, 4, 16, 16, 3]).astype(np.float32)
    rows = prediction_rows(predicted, truth, 2)
    assert rows.shape == (6, 4, 16, 16, 3)
    np.testing.assert_array_equal(rows[:2, :2], truth[:, :2])  # the context ...
    np.testing.assert_array_equal(rows[:2, 2:], np.repeat(truth[:, 1:2], 2, axis=1))  # ... its last frame held
    np.testing.assert_array_equal(rows[2:4], predicted)
    np.testing.assert_array_equal(rows[4:], truth)
    g = tiny_trainer().G_ema
    writer = SampleWriter(g, str(tmp_path), 2, 1, 0, real_clips=(truth, np.zeros([2], np.int32)))
    videos, nrows = writer.grid_videos()
    assert nrows == 3 and videos.shape == (6, 4, 16, 16, 3)
    np.testing.assert_array_equal(videos[2:4, :2], truth[:, :2])
    np.testing.assert_array_equal(videos[4:], truth)


def test_tiny_fp_run_writes_the_centroid_evidence(tmp_path):
    tiny_config("NUM_CLASSES = 1", "G.context_frames = 2",
                f"Encoder.ch = {ENCODER['ch']}", f"Encoder.channel_multipliers = {ENCODER['channel_multipliers']}",
                f"Encoder.channels = {ENCODER['channels']}", "train.num_steps = 1", "train.sample_every = 1",
                "prediction_centroid.every = 1", "prediction_centroid.num_clips = 2")
    result = loop.train(str(tmp_path))
    assert result["step"] == 1
    with open(tmp_path / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f if '"centroid_error"' in line]
    assert [r["step"] for r in records] == [0, 1]
    assert all(len(r["per_frame"]) == len(r["baseline_per_frame"]) == 2 and r["unit"] == "pixels"
               for r in records)
    # The encoder is G's: in the checkpoint, under G and G_ema.
    names = [name for name, _ in tf.train.list_variables(
        tf.train.latest_checkpoint(run_dir.checkpoint_dir(str(tmp_path))))]
    for prefix in ("G/encoder/", "G_ema/encoder/"):
        assert any(n.startswith(prefix) for n in names), prefix
