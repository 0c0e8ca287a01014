"""Encoding videos for people: uint8 conversion, sample grids, animated GIFs, mp4 files, TensorBoard GIFs.

Videos are [T, H, W, 3] (one clip) or [N, T, H, W, 3] (several); float videos have values in [-1, 1], encoded
ones are uint8 in [0, 255]. Decoding lives in ``dvdgan_tf.data.decode``.
"""
import io
import math
import os

import av
import numpy as np
from PIL import Image

from dvdgan_tf.errors import ConfigError

VIDEO_EXTENSIONS = (".mp4", ".gif")


def to_uint8(video):
    """Maps values in [-1, 1] to uint8 [0, 255]: round((x + 1) * 127.5), values outside the range clipped.

    Args:
      video: array-like (NumPy or eager tensor) of any shape, float, values in [-1, 1].
    Returns:
      a NumPy uint8 array of the same shape. The SavedModel's ``video_uint8`` output uses the same formula.
    """
    video = np.asarray(video, dtype=np.float32)
    return np.round(np.clip((video + 1.0) * 127.5, 0.0, 255.0)).astype(np.uint8)


def video_grid(videos, rows=None, cols=None, padding=0):
    """Tiles N videos into one video, filling row by row.

    Args:
      videos: [N, T, H, W, C] array-like (any dtype).
      rows, cols: give exactly one; the other is ceil(N / given). Cells left over are zeros (black for uint8).
      padding: pixels of zeros between neighbouring cells (none around the border).
    Returns:
      a NumPy array [T, rows * (H + padding) - padding, cols * (W + padding) - padding, C] of the input dtype.
    """
    videos = np.asarray(videos)
    if videos.ndim != 5:
        raise ValueError(f"video_grid expects videos shaped [N, T, H, W, C], got shape {list(videos.shape)}.")
    if (rows is None) == (cols is None):
        raise ValueError(f"video_grid needs exactly one of rows and cols, got rows={rows}, cols={cols}.")
    n, t, h, w, c = videos.shape
    if n == 0:
        raise ValueError("video_grid needs at least one video.")
    rows = rows if rows is not None else math.ceil(n / cols)
    cols = cols if cols is not None else math.ceil(n / rows)
    if rows < 1 or cols < 1 or rows * cols < n:
        raise ValueError(f"a {rows} x {cols} grid cannot hold {n} videos.")
    grid = np.zeros((t, rows * (h + padding) - padding, cols * (w + padding) - padding, c), videos.dtype)
    for i in range(n):
        y, x = (i // cols) * (h + padding), (i % cols) * (w + padding)
        grid[:, y:y + h, x:x + w] = videos[i]
    return grid


def _check_frames(frames):
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or frames.shape[0] < 1:
        raise ValueError(f"expected uint8 RGB frames shaped [T, H, W, 3] with T >= 1, got dtype {frames.dtype} "
                         f"and shape {list(frames.shape)}; convert [-1, 1] videos with to_uint8 first.")
    return frames


def encode_gif(frames, fps=8):
    """An animated, endlessly looping GIF89a of ``frames``.

    Args:
      frames: [T, H, W, 3] uint8. fps: frames per second (GIF stores delays in 1/100 s, so it is rounded).
    Returns:
      the GIF file as bytes. Each frame gets its own 256-colour adaptive palette (Pillow). Pillow merges a frame
      identical to the one before it into that one (their display times added), so playback timing is kept
      but such a GIF holds fewer than T images.
    """
    frames = _check_frames(frames)
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=1000.0 / fps,
                   loop=0, optimize=False, disposal=1)
    return buffer.getvalue()


def check_video_path(path):
    """Raises ConfigError unless ``path`` ends in a supported video extension; returns the extension."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in VIDEO_EXTENSIONS:
        raise ConfigError(f"cannot write video {path!r}: the file name must end in "
                          f"{' or '.join(VIDEO_EXTENSIONS)} (H.264 mp4 or animated GIF).")
    return extension


def write_video(path, frames, fps=8):
    """Writes ``frames`` [T, H, W, 3] uint8 to ``path`` as H.264 mp4 or animated GIF, chosen by the extension.

    mp4: libx264 (PyAV), yuv420p, CRF 18; an odd height or width gets its last row or column repeated, as
    yuv420p needs even sizes. The video is encoded in memory, then written with ``files.write_bytes``: the
    file appears at ``path`` only when complete, with the permissions of the user's umask (local paths), and a
    failed write raises ``files.StorageError`` naming the path. Raises ConfigError for other extensions.
    Returns ``path``.
    """
    from dvdgan_tf.io import files  # pylint: disable=import-outside-toplevel  (imports TensorFlow)
    extension = check_video_path(path)
    frames = _check_frames(frames)
    if extension == ".gif":
        data = encode_gif(frames, fps)
    else:
        buffer = io.BytesIO()
        _write_mp4(buffer, frames, fps)
        data = buffer.getvalue()
    return files.write_bytes(path, data)


def _write_mp4(file, frames, fps):
    t, h, w, _ = frames.shape
    frames = np.pad(frames, [(0, 0), (0, h % 2), (0, w % 2), (0, 0)], mode="edge")
    with av.open(file, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def gif_summary(tag, videos, step=None, rows=None, cols=None, fps=8, padding=1, description=None):
    """Writes ``videos`` as one animated GIF grid to the default tf.summary writer (TensorBoard's Images tab).

    Call eagerly (GIF encoding is Python), inside ``writer.as_default()``.
    Args:
      tag: summary name. videos: [N, T, H, W, 3], float in [-1, 1] or uint8.
      step: int or None (tf.summary's default step). rows or cols: the grid shape (see video_grid), e.g. one
        row per class with videos ordered class by class. fps, padding: as in encode_gif and video_grid.
    Returns:
      True if a writer took the summary, False if there is no default writer.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from tensorboard.plugins.image import metadata  # pylint: disable=import-outside-toplevel

    videos = np.asarray(videos)
    frames = video_grid(videos if videos.dtype == np.uint8 else to_uint8(videos), rows=rows, cols=cols,
                        padding=padding)
    height, width = frames.shape[1:3]
    summary_metadata = metadata.create_summary_metadata(display_name=tag, description=description or "")
    tensor = tf.constant([str(width), str(height), encode_gif(frames, fps)], dtype=tf.string)
    return tf.summary.write(tag, tensor, step=step, metadata=summary_metadata)
