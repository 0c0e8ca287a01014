"""video_io: uint8 conversion, grids, GIF and mp4 encoding (decoded back with PyAV/Pillow), TensorBoard GIFs."""
import glob
import io
import os

import av
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from dvdgan_tf.io import video as video_io
from dvdgan_tf.errors import ConfigError


def decode(source):
    """All frames of a video file or bytes, as uint8 [T, H, W, 3], decoded by PyAV."""
    with av.open(io.BytesIO(source) if isinstance(source, bytes) else source) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def distinct_frames(t=5, h=12, w=20):
    """Frames whose colours differ from frame to frame (a few flat colours, so a GIF palette is exact)."""
    frames = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):
        frames[i, :, :w // 2] = (40 * i, 255 - 40 * i, 100)
        frames[i, :, w // 2:] = (10, 20 * i, 200)
    return frames


def test_to_uint8_maps_the_value_range():
    x = np.array([-1.0, 1.0, 0.0, -2.0, 2.0, 0.5, -0.5])
    np.testing.assert_array_equal(video_io.to_uint8(x), [0, 255, 128, 0, 255, 191, 64])
    assert video_io.to_uint8(tf.zeros([2, 3])).dtype == np.uint8


def test_video_grid_places_videos_row_by_row_with_padding():
    videos = np.stack([np.full((2, 3, 4, 3), i + 1, np.uint8) for i in range(5)])  # video i has value i + 1
    grid = video_io.video_grid(videos, cols=2, padding=1)
    assert grid.shape == (2, 3 * 3 + 2, 2 * 4 + 1, 3)
    for i in range(5):
        r, c = divmod(i, 2)
        assert (grid[:, r * 4:r * 4 + 3, c * 5:c * 5 + 4] == i + 1).all()
    assert (grid[:, 3, :] == 0).all() and (grid[:, :, 4] == 0).all()  # padding
    assert (grid[:, 8:, 5:] == 0).all()  # the empty sixth cell
    assert video_io.video_grid(videos, rows=1).shape == (2, 3, 20, 3)
    assert video_io.video_grid(videos, rows=5).shape == (2, 15, 4, 3)


def test_video_grid_rejects_bad_arguments():
    videos = np.zeros((3, 2, 4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="exactly one of rows and cols"):
        video_io.video_grid(videos, rows=1, cols=3)
    with pytest.raises(ValueError, match=r"\[N, T, H, W, C\]"):
        video_io.video_grid(videos[0])


def test_encode_gif_is_a_looping_gif89a_with_every_frame():
    frames = distinct_frames()
    data = video_io.encode_gif(frames, fps=10)
    assert data[:6] == b"GIF89a"
    decoded = decode(data)
    assert decoded.shape == frames.shape
    np.testing.assert_array_equal(decoded, frames)
    image = Image.open(io.BytesIO(data))
    assert image.n_frames == 5 and image.info["loop"] == 0 and image.info["duration"] == 100


def test_encode_gif_rejects_float_frames():
    with pytest.raises(ValueError, match="uint8"):
        video_io.encode_gif(np.zeros((2, 4, 4, 3), np.float32))


@pytest.mark.parametrize("height,width", [(12, 20), (13, 21)])
def test_write_mp4_decodes_to_the_same_frames(tmp_path, height, width):
    t = np.arange(6)[:, None, None, None]
    y, x = np.mgrid[:height, :width]
    frames = (np.stack([x * 6, y * 6, 200 - x * 3 - y * 3], -1)[None] + 10 * t).clip(0, 255).astype(np.uint8)
    path = str(tmp_path / "v.mp4")
    video_io.write_video(path, frames, fps=8)
    decoded = decode(path)
    with av.open(path) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    assert decoded.shape == (6, height + height % 2, width + width % 2, 3)  # yuv420p needs even sizes
    assert np.abs(decoded[:, :height, :width].astype(int) - frames).mean() < 4  # swapped channels: ~60
    assert os.listdir(tmp_path) == ["v.mp4"]  # no temporary file left


def test_write_gif_by_extension(tmp_path):
    path = str(tmp_path / "v.GIF")
    video_io.write_video(path, distinct_frames())
    with open(path, "rb") as f:
        assert f.read(6) == b"GIF89a"
    assert decode(path).shape == (5, 12, 20, 3)


def test_write_video_rejects_other_extensions(tmp_path):
    with pytest.raises(ConfigError, match=r"\.mp4 or \.gif"):
        video_io.write_video(str(tmp_path / "v.avi"), distinct_frames())
    assert not os.listdir(tmp_path)


def test_gif_summary_is_an_image_summary_tensorboard_shows(tmp_path):
    videos = np.random.default_rng(0).uniform(-1, 1, (6, 4, 8, 10, 3)).astype(np.float32)
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        assert video_io.gif_summary("samples/ema", videos, step=3, rows=2, padding=1)
    writer.close()
    assert not video_io.gif_summary("x", videos, step=3, rows=2)  # no default writer: nothing written
    events = [e for f in glob.glob(str(tmp_path / "events.*"))
              for e in tf.compat.v1.train.summary_iterator(f) if e.summary.value]
    (value,) = [v for e in events for v in e.summary.value]
    assert events[0].step == 3 and value.tag == "samples/ema"
    assert value.metadata.plugin_data.plugin_name == "images"
    width, height, gif = tf.make_ndarray(value.tensor)
    assert (int(width), int(height)) == (3 * 10 + 2, 2 * 8 + 1)
    assert gif[:6] == b"GIF89a" and decode(gif).shape == (4, 17, 32, 3)


@pytest.fixture
def umask():
    """Sets the process umask for a test and restores it after."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077])
@pytest.mark.parametrize("name", ["v.gif", "v.mp4"])
def test_written_videos_get_the_permissions_of_the_umask(tmp_path, umask, mask, name):
    """As open() would create them (0o666 & ~umask), not the 0o600 of a tempfile; nothing else left behind."""
    umask(mask)
    path = tmp_path / "new_folder" / name
    video_io.write_video(str(path), distinct_frames())
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~mask)
    assert oct(os.stat(path.parent).st_mode & 0o777) == oct(0o777 & ~mask)
    assert os.listdir(path.parent) == [name]
