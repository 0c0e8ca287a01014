"""The prediction FVD protocols (fvdpred_bair, fvdpred_k600, fvdpred<N>x<R>_<C>c<T>f): their definitions, the
FVD of continuations of the real clips' contexts (about 0 for a model that returns the true continuation, clearly
more for one that repeats the last context frame), z per (run, clip), and the errors of misuse. The small
deterministic stand-in network of test_metrics_evaluate replaces I3D."""
import numpy as np
import pytest

from dvdgan_tf.errors import ConfigError, DataError
from dvdgan_tf.metrics import evaluate, frechet, protocols
from dvdgan_tf.nets import truncation

from test_metrics_evaluate import fake_i3d, fake_network

FRAMES, CONTEXT = 9, 2


def moving_clips(n, seed=0):
    """[n, 9, 8, 8, 3] float32 clips in [-1, 1]: a bright square moving one pixel per frame, a per-clip colour,
    position and direction, so that motion matters to the stand-in network (it sees frame differences)."""
    rng = np.random.default_rng(seed)
    videos = np.full((n, FRAMES, 8, 8, 3), -0.8, np.float32)
    for i in range(n):
        colour = rng.uniform(-0.2, 1.0, 3)
        y, x = rng.integers(0, 6, 2)
        dy, dx = rng.choice([-1, 1], 2)
        for t in range(FRAMES):
            yy, xx = (y + dy * t) % 7, (x + dx * t) % 7
            videos[i, t, yy:yy + 2, xx:xx + 2] = colour
    return videos


def real_batches(videos, batch=5, labels=None):
    labels = np.zeros(len(videos), np.int32) if labels is None else labels
    return [(videos[i:i + batch], labels[i:i + batch]) for i in range(0, len(videos), batch)]


class Oracle:
    """A fake prediction model that knows the real clips: continues each context with the real clip it came
    from (``copy``) or with its last context frame repeated (``repeat``); records what it was given."""

    def __init__(self, videos, mode):
        self.by_context = {v[:CONTEXT].tobytes(): v for v in videos}
        self.mode, self.calls = mode, []

    def __call__(self, context, z, labels):
        context = context.numpy()
        self.calls.append((context.shape, z.numpy(), labels.numpy()))
        if self.mode == "copy":
            return np.stack([self.by_context[c.tobytes()] for c in context])
        last = np.repeat(context[:, -1:], FRAMES - CONTEXT, axis=1)
        return np.concatenate([context, last], axis=1)


def clips_of(model, num_classes=1, seed=0):
    return evaluate.PredictedClips(model, 4, num_classes, CONTEXT, (FRAMES, 8, 8, 3), seed=seed)


def test_named_protocols_and_their_definitions():
    bair, k600 = protocols.get_protocol("fvdpred_bair"), protocols.get_protocol("fvdpred_k600")
    assert (bair.kind, bair.network, bair.output) == ("fvdpred", "i3d", "logits")
    # BAIR: the 256 test clips, 1 context frame + 15 predicted = 16, FVD of 100 sampling runs averaged.
    assert (bair.num_samples, bair.num_runs, bair.context_frames, bair.num_frames) == (256, 100, 1, 16)
    assert bair.num_generated == 25600 and bair.needs_real
    # Kinetics-600: 50,000 test clips, 5 context frames + 11 predicted, one run.
    assert (k600.num_samples, k600.num_runs, k600.context_frames, k600.num_frames) == (50000, 1, 5, 16)
    generic = protocols.get_protocol("fvdpred12x3_2c9f")
    assert (generic.num_samples, generic.num_runs, generic.context_frames, generic.num_frames) == (12, 3, 2, 9)
    assert generic.describe()["context_frames"] == 2
    # The synthesis protocols' descriptions (hashed into cached statistics' keys) did not change.
    assert "context_frames" not in protocols.get_protocol("fvd2048_16f").describe()
    for bad in ("fvdpred", "fvdpred_ucf", "fvdpred1x1_1c16f", "fvdpred10x0_1c16f", "fvdpred10x1_16c16f",
                "fvdpred10x1_0c16f"):
        with pytest.raises(ConfigError, match="unknown or impossible metric"):
            protocols.get_protocol(bad)
    with pytest.raises(ConfigError, match="at least 9 frames"):
        protocols.get_protocol("fvdpred10x1_2c8f")


def test_the_true_continuation_scores_about_0_and_a_frozen_one_clearly_more():
    videos = moving_clips(12)
    scores = {}
    for mode in ("copy", "repeat"):
        scores[mode] = evaluate.compute_metrics(clips_of(Oracle(videos, mode)), real_batches(videos),
                                                "fvdpred12x1_2c9f", i3d=fake_i3d(), progress=False)
    assert abs(scores["copy"]["fvdpred12x1_2c9f"]) < 1e-6
    # The repeated last frame has no motion: independently, the FVD of those clips against the real ones.
    frozen = np.concatenate([videos[:, :CONTEXT], np.repeat(videos[:, CONTEXT - 1:CONTEXT], FRAMES - CONTEXT, 1)], 1)
    real, fake = (frechet.RunningMoments(6) for _ in range(2))
    real.update(fake_network(videos)["logits"].astype(np.float64))
    fake.update(fake_network(frozen)["logits"].astype(np.float64))
    expected = frechet.frechet_distance_from_moments(real, fake)
    assert expected > 0.1
    assert scores["repeat"]["fvdpred12x1_2c9f"] == pytest.approx(expected, rel=1e-4)


def test_runs_draw_fresh_z_per_clip_and_report_mean_and_std():
    videos = moving_clips(10)
    model = Oracle(videos, "repeat")
    values = evaluate.compute_metrics(clips_of(model, seed=7), real_batches(videos, batch=4), "fvdpred10x3_2c9f",
                                      i3d=fake_i3d(), progress=False)
    assert set(values) == {"fvdpred10x3_2c9f", "fvdpred10x3_2c9f_std"}
    assert values["fvdpred10x3_2c9f_std"] == pytest.approx(0, abs=1e-9)  # this model ignores z: equal runs
    # 3 runs per real batch of 4, 4, 2 clips; each call continues the same batch's contexts.
    assert [c[0][0] for c in model.calls] == [4, 4, 4, 4, 4, 4, 2, 2, 2]
    # Run r's z for clip i: clip_latents' clip r * 2**32 + i, whatever the batch.
    z_run2_batch1 = model.calls[5][1]
    np.testing.assert_array_equal(z_run2_batch1, truncation.clip_latents(7, 2 * 2 ** 32 + 4, 4, 4))
    assert not np.array_equal(model.calls[0][1], model.calls[1][1])


def test_the_model_gets_the_real_clips_labels_and_uint8_contexts_in_range():
    videos = moving_clips(6)
    labels = np.array([0, 2, 1, 2, 0, 1], np.int32)
    model = Oracle(videos, "copy")
    evaluate.compute_metrics(clips_of(model, num_classes=3), real_batches(videos, 6, labels), "fvdpred6x1_2c9f",
                             i3d=fake_i3d(), progress=False)
    np.testing.assert_array_equal(model.calls[0][2], labels)
    as_uint8 = np.round((videos + 1) * 127.5).astype(np.uint8)
    seen = []
    clips = evaluate.PredictedClips(lambda c, z, l: seen.append(c.numpy()) or np.repeat(c[:, :1], FRAMES, 1), 4, 3,
                                    CONTEXT, None)
    evaluate.compute_metrics(clips, [as_uint8], "fvdpred6x1_2c9f", i3d=fake_i3d(), progress=False)
    assert seen[0].dtype == np.float32 and seen[0].min() >= -1 and seen[0].max() <= 1
    np.testing.assert_allclose(seen[0], as_uint8[:, :CONTEXT] / 127.5 - 1, atol=1e-6)
    with pytest.raises(DataError, match=r"outside the model's class range \[0, 2\)"):
        evaluate.compute_metrics(clips_of(Oracle(videos, "copy"), num_classes=2), real_batches(videos, 6, labels),
                                 "fvdpred6x1_2c9f", i3d=fake_i3d(), progress=False)


def test_real_statistics_are_cached_and_contexts_still_read(tmp_path):
    videos = moving_clips(8)
    first = evaluate.compute_metrics(clips_of(Oracle(videos, "repeat")), real_batches(videos), "fvdpred8x1_2c9f",
                                     i3d=fake_i3d(), progress=False, stats_cache_dir=str(tmp_path),
                                     dataset_key="clips")
    assert len(list(tmp_path.iterdir())) == 1
    again = evaluate.compute_metrics(clips_of(Oracle(videos, "repeat")), real_batches(videos), "fvdpred8x1_2c9f",
                                     i3d=fake_i3d(), progress=False, stats_cache_dir=str(tmp_path),
                                     dataset_key="clips")
    assert again == pytest.approx(first, rel=1e-12)
    with pytest.raises(ConfigError, match="need real clips"):
        evaluate.compute_metrics(clips_of(Oracle(videos, "repeat")), None, "fvdpred8x1_2c9f", i3d=fake_i3d(),
                                 progress=False, stats_cache_dir=str(tmp_path), dataset_key="clips")


def test_misuse_is_one_clear_error():
    videos = moving_clips(6)
    clips = clips_of(Oracle(videos, "copy"))
    with pytest.raises(ConfigError, match="prediction model .* not \\['fvd6_9f'\\]"):
        evaluate.compute_metrics(clips, real_batches(videos), "fvdpred6x1_2c9f,fvd6_9f", i3d=fake_i3d(),
                                 progress=False)
    with pytest.raises(ConfigError, match="other context-frame counts than this model's 2"):
        evaluate.compute_metrics(clips, real_batches(videos), "fvdpred6x1_1c9f", i3d=fake_i3d(), progress=False)
    with pytest.raises(ConfigError, match="score a prediction model"):
        evaluate.compute_metrics(lambda n: videos[:n], real_batches(videos), "fvdpred6x1_2c9f", i3d=fake_i3d(),
                                 progress=False)
    with pytest.raises(DataError, match="real data ended after 6 clips: fvdpred7x1_2c9f needs 7"):
        evaluate.compute_metrics(clips, real_batches(videos), "fvdpred7x1_2c9f", i3d=fake_i3d(), progress=False)


def test_dvdgan_eval_reads_the_test_split_for_prediction_metrics_by_default():
    assert protocols.default_real_split("fvdpred_bair") == "eval"
    assert protocols.default_real_split(["fvdpred12x1_2c9f"]) == "eval"
    assert protocols.default_real_split("fvd2048_16f,is2048_16f") == "train"


class OracleGenerator:
    """A stand-in for a prediction G (the attributes MetricsMonitor reads; called as G is) that continues each
    context with the real clip it came from, or repeats its last frame."""
    z_dim, num_classes, context_frames, num_frames, resolution = 4, 1, CONTEXT, FRAMES, 8

    def __init__(self, videos, mode):
        self.oracle = Oracle(videos, mode)

    def __call__(self, z, labels, training=False, context=None):
        assert not training and context is not None
        return self.oracle(context, z, labels)


def test_in_training_metrics_score_a_prediction_model(tmp_path):
    """MetricsMonitor (the training loop's metrics) with a prediction generator: its continuations of the
    evaluation clips' contexts, about 0 for the true continuation, more for the frozen last frame; recorded in
    metrics.jsonl under the protocol's name."""
    import json  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.training import monitors  # pylint: disable=import-outside-toplevel
    videos = moving_clips(10)

    def dataset_fn(batch_size, num_frames, resolution, num_classes, training=True, seed=0):
        assert not training and (num_frames, resolution) == (FRAMES, 8)
        return real_batches(videos, batch_size)

    values = {}
    for mode in ("copy", "repeat"):
        monitor = monitors.MetricsMonitor(OracleGenerator(videos, mode), dataset_fn, str(tmp_path / mode),
                                          "fvdpred10x2_2c9f", "# config", seed=0, batch_size=4, i3d_handle=fake_i3d())
        values[mode] = monitor.measure(step=5)["fvdpred10x2_2c9f"]
    assert abs(values["copy"]) < 1e-6 and values["repeat"] > 0.1
    with open(tmp_path / "repeat" / "metrics.jsonl", encoding="utf-8") as f:
        record = json.loads(f.readline())
    assert record["step"] == 5 and record["values"]["fvdpred10x2_2c9f"] == pytest.approx(values["repeat"])
    assert record["protocols"]["fvdpred10x2_2c9f"]["context_frames"] == CONTEXT


def test_in_training_metrics_refuse_protocols_that_do_not_fit_the_model_at_start_up(tmp_path):
    from dvdgan_tf.training import monitors  # pylint: disable=import-outside-toplevel
    videos = moving_clips(4)
    with pytest.raises(ConfigError, match="this is a prediction model .* not \\['fvd10_9f'\\]"):
        monitors.MetricsMonitor(OracleGenerator(videos, "copy"), None, str(tmp_path), "fvd10_9f", "", seed=0,
                                i3d_handle=fake_i3d())
    synthesis = type("Synthesis", (), dict(z_dim=4, num_classes=1, num_frames=FRAMES, resolution=8))()
    with pytest.raises(ConfigError, match="score a prediction model"):
        monitors.MetricsMonitor(synthesis, None, str(tmp_path), "fvdpred10x1_2c9f", "", seed=0, i3d_handle=fake_i3d())
