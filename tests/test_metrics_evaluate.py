"""compute_metrics: protocols, one pass over real and generated clips, streaming statistics and their cache,
IS runs and splits, and the errors for too little data or mismatched clips. A small deterministic stand-in
network replaces I3D and C3D here (the real ones are tested in test_metrics_i3d.py / test_metrics_c3d.py)."""
import json

import numpy as np
import pytest

from dvdgan_tf.errors import ConfigError, DataError
from dvdgan_tf.metrics import c3d, classifiers, evaluate, frechet, inception_score, protocols


def fake_network(videos):
    """[B, T, 8, 8, 3] in [-1, 1] -> logits [B, 6], features [B, 4]: cheap, deterministic, clip-dependent."""
    v = np.asarray(videos, np.float64)
    per_channel = v.mean(axis=(1, 2, 3))
    motion = np.abs(np.diff(v, axis=1)).mean(axis=(1, 2, 3, 4))[:, None]
    logits = np.concatenate([3 * per_channel, 5 * motion, per_channel[:, :2] ** 2], axis=1)
    return {"logits": logits.astype(np.float32), "features": logits[:, :4].astype(np.float32) * 2}


def fake_i3d(has_features=True):
    return classifiers.VideoClassifier(fake_network, "fake-i3d", has_features, input_size=8, batch_size=5)


class FakeC3D(c3d.C3DClassifier):
    def __init__(self):  # pylint: disable=super-init-not-called
        self.identity = "fake-c3d"

    def logits(self, videos):
        videos = np.asarray(videos, np.float32)
        assert videos.shape[1] == 16
        return fake_network(videos[:, :, :8, :8] / 127.5 - 1 if videos.dtype == np.uint8 else videos[:, :, :8, :8])[
            "logits"]


def clips(n, frames=9, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    return np.clip(rng.uniform(-1, 1, (n, frames, 8, 8, 3)) * 0.5 + shift, -1, 1).astype(np.float32)


def generator_of(videos):
    """generate_fn handing out consecutive clips of a fixed array, with a record of the requested sizes."""
    state = {"next": 0, "sizes": []}

    def generate(n):
        state["sizes"].append(n)
        out = videos[state["next"]:state["next"] + n]
        state["next"] += n
        return out

    return generate, state


def real_batches(videos, batch=3):
    return [(videos[i:i + batch], np.zeros(len(videos[i:i + batch]), np.int32)) for i in range(0, len(videos), batch)]


def test_protocol_names():
    p = protocols.get_protocol("fvd2048_16f")
    assert (p.kind, p.network, p.output, p.num_samples, p.num_frames) == ("fvd", "i3d", "logits", 2048, 16)
    assert protocols.get_protocol("fid2048_16f").output == "features"
    assert protocols.get_protocol("is2048_16f").num_splits == 10
    tgan = protocols.get_protocol("isucf2048x10")
    assert (tgan.network, tgan.num_frames, tgan.num_runs, tgan.num_generated) == ("c3d", 16, 10, 20480)
    assert protocols.get_protocol("isv2048_ucf").num_splits == 10
    for bad in ("fvd", "fvd2048", "is5_16f", "fvd1_16f", "kid2048_16f"):
        with pytest.raises(ConfigError, match="unknown or impossible metric"):
            protocols.get_protocol(bad)
    assert [p.name for p in protocols.parse_metric_list("fvd16_9f, is10_9f,fvd16_9f")] == ["fvd16_9f", "is10_9f"]


def test_values_equal_a_direct_computation_on_the_same_clips():
    real, fake = clips(14, seed=1), clips(13, seed=2, shift=0.2)
    generate, state = generator_of(fake)
    values = evaluate.compute_metrics(generate, real_batches(real), "fvd12_9f,fid12_9f,is10_9f", i3d=fake_i3d(),
                                      batch_size=5, progress=False)
    assert state["sizes"] == [5, 5, 2]  # exactly 12 generated clips: the most any metric needs
    r, g = fake_network(real[:12]), fake_network(fake[:12])  # network input: the clips resized to 8x8 = as is
    assert values["fvd12_9f"] == pytest.approx(frechet.frechet_distance_from_activations(r["logits"], g["logits"]),
                                               rel=1e-6)
    assert values["fid12_9f"] == pytest.approx(
        frechet.frechet_distance_from_activations(r["features"], g["features"]), rel=1e-6)
    mean, std = inception_score.inception_score(g["logits"][:10], 10)
    assert (values["is10_9f"], values["is10_9f_std"]) == pytest.approx((mean, std), rel=1e-6)


def test_real_statistics_are_cached_under_the_protocol_hash(tmp_path):
    real, fake = clips(12, seed=3), clips(12, seed=4, shift=-0.3)
    kwargs = dict(i3d=fake_i3d(), stats_cache_dir=str(tmp_path), progress=False)
    first = evaluate.compute_metrics(generator_of(fake)[0], real_batches(real), ["fvd10_9f"], dataset_key="d1",
                                     **kwargs)
    (cached,) = tmp_path.glob("fvd10_9f-*.npz")
    with np.load(cached) as f:
        assert json.loads(str(f["about"]))["dataset"] == "d1" and int(f["count"]) == 10
    again = evaluate.compute_metrics(generator_of(fake)[0], None, ["fvd10_9f"], dataset_key="d1", **kwargs)
    assert again == first
    with pytest.raises(ConfigError, match="need real data"):  # another dataset: not in the cache
        evaluate.compute_metrics(generator_of(fake)[0], None, ["fvd10_9f"], dataset_key="d2", **kwargs)


def test_ucf_inception_scores_runs_and_splits():
    fake = clips(30, frames=16, seed=5)
    values = evaluate.compute_metrics(generator_of(fake)[0], None, "isucf10x3", c3d=FakeC3D(), progress=False)
    logits = fake_network(fake)["logits"]
    runs = [inception_score.inception_score(logits[i * 10:(i + 1) * 10], 1)[0] for i in range(3)]
    assert values["isucf10x3"] == pytest.approx(np.mean(runs), rel=1e-6)
    assert values["isucf10x3_std"] == pytest.approx(np.std(runs), rel=1e-6)
    values = evaluate.compute_metrics(generator_of(fake)[0], None, "isv20_ucf", c3d=FakeC3D(), progress=False)
    assert values["isv20_ucf"] == pytest.approx(inception_score.inception_score(logits[:20], 10)[0], rel=1e-6)


def test_errors_for_too_little_data_and_mismatched_clips():
    real, fake = clips(7, seed=6), clips(16, seed=7)
    with pytest.raises(DataError, match=r"ended after 7 clips: fvd10_9f needs 10"):
        evaluate.compute_metrics(generator_of(fake)[0], real_batches(real), "fvd10_9f", i3d=fake_i3d(),
                                 progress=False)
    with pytest.raises(DataError, match="9 frames but this protocol is defined on 16-frame clips"):
        evaluate.compute_metrics(generator_of(fake)[0], real_batches(clips(12)), "fvd10_16f", i3d=fake_i3d(),
                                 progress=False)
    with pytest.raises(ConfigError, match="different clip lengths"):
        evaluate.compute_metrics(generator_of(fake)[0], None, "is10_9f,is10_12f", i3d=fake_i3d(), progress=False)
    with pytest.raises(ConfigError, match="only returns logits"):
        evaluate.compute_metrics(generator_of(fake)[0], real_batches(clips(12)), "fid10_9f",
                                 i3d=fake_i3d(has_features=False), progress=False)
    with pytest.raises(DataError, match=r"values in \[-1, 1\]"):
        evaluate.compute_metrics(lambda n: np.full((n, 9, 8, 8, 3), 255.0, np.float32), None, "is10_9f",
                                 i3d=fake_i3d(), progress=False)
    with pytest.raises(ConfigError, match="I3D network needs clips of at least 9 frames, so no FVD, FID or I3D IS"):
        evaluate.compute_metrics(generator_of(clips(10, frames=8))[0], None, "is10_8f", i3d=fake_i3d(),
                                 progress=False)


@pytest.mark.parametrize("frames", [8, 9, 12, 16, 48])
def test_suggested_metric_names_are_accepted_for_that_clip_length(frames):
    """What dvdgan-eval suggests for a generator must be what it then accepts: I3D needs >= 9 frames (its final
    (2, 7, 7) average pool), tgan2's C3D exactly 16."""
    from dvdgan_tf.metrics import i3d
    assert protocols.I3D_MIN_FRAMES == i3d.MIN_FRAMES
    names = protocols.suggested_names(frames)
    expected = ({f"fvd2048_{frames}f", f"fid2048_{frames}f", f"is2048_{frames}f"} if frames >= 9 else set()) | (
        {"isucf2048x10", "isv2048_ucf"} if frames == 16 else set())
    assert set(names) == expected
    assert all(protocols.get_protocol(name).num_frames == frames for name in names)
    for kind in ("fvd", "fid", "is"):
        if frames < 9:
            with pytest.raises(ConfigError, match="at least 9 frames"):
                protocols.get_protocol(f"{kind}2048_{frames}f")


def test_record_writers(tmp_path):
    path = tmp_path / "run" / "metrics.jsonl"
    evaluate.append_jsonl(str(path), {"step": 1, "fvd16_9f": 2.5})
    evaluate.append_jsonl(str(path), {"step": 2, "fvd16_9f": 1.5})
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]
    out = evaluate.write_json(str(tmp_path / "eval.json"), {"metrics": {"a": 1.0}})
    assert json.loads(open(out, encoding="utf-8").read()) == {"metrics": {"a": 1.0}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json", "run"]  # no temp file left behind
    described = evaluate.describe("fvd2048_16f,isucf2048x10", "i3d-id", "c3d-id")
    assert described["networks"] == {"i3d": "i3d-id", "c3d": "c3d-id"}
    assert described["protocols"]["fvd2048_16f"]["num_samples"] == 2048
