"""Video preprocessing for the metric networks, exactly as the FVD reference code does it.

Videos reach the metrics as uint8 [B, T, H, W, 3] (0..255) or float [B, T, H, W, 3] in [-1, 1] (what G emits).
Both are brought to float 0..255, every frame is resized with TF1-style bilinear interpolation (no half-pixel
centres: ``ResizeBilinear(align_corners=False, half_pixel_centers=False)``, which TF2's ``tf.image.resize``
does not reproduce) and mapped back to [-1, 1] with 2 x / 255 - 1.
"""
import numpy as np
import tensorflow as tf

from dvdgan_tf.errors import DataError

RANGE_TOLERANCE = 1e-3  # float videos may overshoot [-1, 1] by this much (rounding); more is an error


def check_videos(videos, name="videos"):
    """Raises DataError unless videos is [B, T, H, W, 3], uint8, or float with values in [-1, 1].

    Returns videos as a tf.Tensor. Eager only (reads the value range).
    """
    videos = tf.convert_to_tensor(videos)
    shape = videos.shape
    if shape.rank != 5 or shape[-1] != 3:
        raise DataError(f"{name} must be shaped [batch, frames, height, width, 3] (RGB), got {shape.as_list()}.")
    if videos.dtype == tf.uint8:
        return videos
    if not videos.dtype.is_floating:
        raise DataError(f"{name} must be uint8 (0..255) or float in [-1, 1], got dtype {videos.dtype.name}.")
    if tf.size(videos) == 0:
        return videos
    lo, hi = float(tf.reduce_min(videos)), float(tf.reduce_max(videos))
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise DataError(f"{name} contain NaN or infinite values.")
    if lo < -1 - RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        hint = (" They look like 0..255 pixel values: pass them as uint8, or as x / 127.5 - 1."
                if hi > 2 else "")
        raise DataError(f"float {name} must have values in [-1, 1], got [{lo:.4g}, {hi:.4g}].{hint}")
    return videos


def to_0_255(videos):
    """uint8 or float [-1, 1] videos -> float32 0..255 (values of float input clipped to [-1, 1] first)."""
    if videos.dtype == tf.uint8:
        return tf.cast(videos, tf.float32)
    return (tf.clip_by_value(tf.cast(videos, tf.float32), -1.0, 1.0) + 1.0) * 127.5


def resize_frames_tf1(videos, size, align_corners=False):
    """Bilinear resize of every frame of float videos [B, T, H, W, C] to [B, T, size, size, C].

    align_corners=False is TF1's ``tf.image.resize_bilinear`` default (used by FVD); True is the corner-aligned
    variant Chainer's ``resize_images`` implements (used by the C3D Inception Score).
    """
    b, t, h, w, c = (tf.shape(videos)[i] for i in range(5))
    frames = tf.reshape(videos, [b * t, h, w, c])
    frames = tf.raw_ops.ResizeBilinear(images=frames, size=[size, size], align_corners=align_corners,
                                       half_pixel_centers=False)
    return tf.reshape(frames, [b, t, size, size, c])


def to_network_input(videos, size, min_frames=1, num_frames=None, name="videos"):
    """Checks uint8 / [-1, 1] videos and returns float32 [B, T, size, size, 3] in [-1, 1] (FVD preprocessing).

    Args:
      min_frames: clips shorter than this raise DataError (I3D needs 9).
      num_frames: if given, clips must have exactly this many frames (the protocol's clip length).
    """
    videos = check_videos(videos, name)
    frames = videos.shape[1]
    if num_frames is not None and frames != num_frames:
        raise DataError(f"{name} have {frames} frames but this protocol is defined on {num_frames}-frame clips. "
                        f"Use the protocol for {frames} frames (e.g. fvd2048_{frames}f), or give "
                        f"{num_frames}-frame clips.")
    if frames < min_frames:
        raise DataError(f"{name} have {frames} frames, but the network needs at least {min_frames} frames. Use "
                        f"longer clips.")
    resized = resize_frames_tf1(to_0_255(videos), size)
    return 2.0 * resized / 255.0 - 1.0
