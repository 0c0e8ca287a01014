"""Decoding videos with PyAV into uint8 RGB frames whose short side is resized to a target size.

Every frame of every source (video files, BAIR's raw frames, TFDS videos) goes through the same resize: FFmpeg's
swscale with area interpolation (`INTERPOLATION`), keeping the aspect ratio. `target_size` fixes the rounding:
the short side becomes exactly `short_side`, the long side `round(long * short_side / short)`.

Local files are opened by FFmpeg itself; remote ones (`gs://`, `ram://`) are streamed through
`tf.io.gfile.GFile`, which PyAV reads and seeks like a file (an .mp4 with its index at the end works too).
"""
import dataclasses
import math

import av
import numpy as np

INTERPOLATION = "AREA"


class VideoReadError(Exception):
    """A video that cannot be decoded at all (corrupt, not a video, no frames). Preparation counts and skips it."""


@dataclasses.dataclass
class DecodedVideo:
    """frames: uint8 [T, H, W, 3], RGB, 0..255. fps: frames per second from the container, 0.0 when unknown.
    error: the message of a decoding error that ended the video early (frames before it are kept), else None."""
    frames: np.ndarray
    fps: float
    error: str | None = None


def target_size(height, width, short_side):
    """(height, width) after resizing so that the short side is `short_side`, aspect ratio kept (rounded)."""
    if short_side <= 0:
        raise ValueError(f"short_side must be positive, got {short_side}")
    scale = short_side / min(height, width)
    if height <= width:
        return short_side, max(1, int(math.floor(width * scale + 0.5)))
    return max(1, int(math.floor(height * scale + 0.5))), short_side


def read_video(path, short_side, max_frames=None):
    """Decodes the first video stream of `path`; returns a `DecodedVideo` with frames [T, H, W, 3] uint8 whose
    short side is `short_side`. Reads at most `max_frames` frames when given. Raises `VideoReadError` when the
    file cannot be opened or yields no frame; an error after some frames ends the video there (`error` set)."""
    if "://" not in str(path):
        return _read_container(_opened(str(path)), short_side, max_frames)
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    with tf.io.gfile.GFile(str(path), "rb") as f:
        try:
            container = _opened(f)
        except tf.errors.NotFoundError as e:
            raise VideoReadError(f"cannot open: no such file: {path}") from e
        except tf.errors.PermissionDeniedError as e:
            raise VideoReadError(f"cannot open: permission denied: {path}") from e
        # Other tf.errors (a dropped connection, ...) are raised as they are: the work is retried, not skipped.
        return _read_container(container, short_side, max_frames)


def _opened(source):
    """av.open(source) (a path, or a file object that PyAV reads and seeks) with the errors of a file that
    cannot be opened as VideoReadError."""
    try:
        return av.open(source)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise VideoReadError(f"cannot open: {e}") from e


def _read_container(container, short_side, max_frames):
    with container:
        if not container.streams.video:
            raise VideoReadError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate) if stream.average_rate else 0.0
        frames, error = [], None
        try:
            for frame in container.decode(stream):
                height, width = target_size(frame.height, frame.width, short_side)
                frames.append(frame.to_ndarray(width=width, height=height, format="rgb24",
                                               interpolation=INTERPOLATION))
                if max_frames and len(frames) >= max_frames:
                    break
        except (av.FFmpegError, ValueError) as e:
            error = f"decoding stopped after {len(frames)} frames: {e}"
    if not frames:
        raise VideoReadError(error or "no frames")
    if len({f.shape for f in frames}) > 1:
        raise VideoReadError("frame size changes within the video")
    return DecodedVideo(np.stack(frames), fps, error)


def resize_frames(frames, short_side):
    """Resizes uint8 RGB frames [T, H, W, 3] so that their short side is `short_side` (same resize as
    `read_video`). Returns uint8 [T, H', W', 3]; the input itself when it already has that size."""
    frames = np.asarray(frames, dtype=np.uint8)
    height, width = target_size(frames.shape[1], frames.shape[2], short_side)
    if (height, width) == frames.shape[1:3]:
        return frames
    out = [av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24").to_ndarray(
        width=width, height=height, format="rgb24", interpolation=INTERPOLATION) for f in frames]
    return np.stack(out)
