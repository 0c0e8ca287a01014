"""The embedded default dataset: procedurally drawn, class-conditional moving shapes. No files, no downloads.

A clip shows one coloured shape on a black background moving in a straight line and bouncing off the borders.
The class fixes all three things a viewer can check:
  shape  = class % 4 (0 disc, 1 square, 2 diamond, 3 plus sign),
  colour = a hue that differs for every class,
  motion = a direction (angle 2*pi*class/num_classes + pi/4) at a fixed speed.
Each example varies only in its start position (uniform) and a small size jitter, drawn from a stateless RNG
keyed by (seed, example index): the same seed always yields the same clips, at any resolution and frame count.
"""
import colorsys
import math

import gin
import numpy as np
import tensorflow as tf

from dvdgan_tf.data import sharding

NUM_SHAPES = 4
SPEED = 0.07  # fraction of the frame width travelled per frame
RADIUS = 0.16  # shape half-size as a fraction of the frame width


def class_colours(num_classes):
    """[num_classes, 3] float32 RGB colours in [0, 1], bright and distinct hues."""
    hues = [(c * 0.618034) % 1.0 for c in range(num_classes)]
    return np.array([colorsys.hsv_to_rgb(h, 0.85, 1.0) for h in hues], np.float32)


def class_velocities(num_classes):
    """[num_classes, 2] float32 (dy, dx) per frame, in frame widths."""
    angles = [2 * math.pi * c / num_classes + math.pi / 4 for c in range(num_classes)]
    return np.array([[SPEED * math.sin(a), SPEED * math.cos(a)] for a in angles], np.float32)


def _bounce(position, low, high):
    """Reflects unbounded 1-D positions into [low, high] (a triangle wave)."""
    span = high - low
    phase = tf.math.floormod(position - low, 2.0 * span)
    return low + span - tf.abs(phase - span)


def _shape_mask(shape_id, dy, dx, radius):
    """Soft mask in [0, 1] of the class's shape; dy, dx: offsets from the centre in frame widths."""
    edge = 0.5 / 64.0  # anti-aliasing width
    masks = tf.stack([
        radius - tf.sqrt(dy ** 2 + dx ** 2),  # disc
        radius - tf.maximum(tf.abs(dy), tf.abs(dx)),  # square
        radius - (tf.abs(dy) + tf.abs(dx)) / 1.4,  # diamond
        tf.maximum(tf.minimum(radius / 2.5 - tf.abs(dy), radius - tf.abs(dx)),
                   tf.minimum(radius / 2.5 - tf.abs(dx), radius - tf.abs(dy))),  # plus sign
    ])
    return tf.clip_by_value(tf.gather(masks, shape_id) / edge + 0.5, 0.0, 1.0)


def clip_centres(label, start, size_jitter, num_frames, num_classes):
    """The shape's centre (y, x) in each frame of a clip, in frame widths: float32 [num_frames, 2] in [0, 1]."""
    radius = RADIUS * size_jitter
    velocity = tf.gather(tf.constant(class_velocities(num_classes)), label)
    t = tf.range(num_frames, dtype=tf.float32)[:, None]
    return _bounce(start[None, :] + t * velocity[None, :], radius, 1.0 - radius)


def render_clip(label, start, size_jitter, num_frames, resolution, num_classes):
    """Draws one clip.

    Args:
      label: int32 scalar class. start: [2] float32 start centre (y, x) in [0, 1]. size_jitter: scalar factor.
    Returns:
      float32 [num_frames, resolution, resolution, 3] in [-1, 1].
    """
    radius = RADIUS * size_jitter
    centres = clip_centres(label, start, size_jitter, num_frames, num_classes)  # [T, 2]
    coords = (tf.range(resolution, dtype=tf.float32) + 0.5) / resolution
    dy = coords[None, :, None] - centres[:, 0, None, None]
    dx = coords[None, None, :] - centres[:, 1, None, None]
    mask = _shape_mask(label % NUM_SHAPES, dy, dx, radius)  # [T, H, W]
    colour = tf.gather(tf.constant(class_colours(num_classes)), label)
    return mask[..., None] * colour * 2.0 - 1.0


def synthetic_example(index, seed, num_frames, resolution, num_classes, with_centres=False):
    """Example ``index`` of the dataset: (video [T, H, W, 3] float32 in [-1, 1], label int32 scalar); with
    ``with_centres`` also the shape's true centre per frame [T, 2] (y, x in frame widths, ``clip_centres``)."""
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(index, tf.int64)])
    draws = tf.random.stateless_uniform([4], key)
    label = tf.cast(tf.floor(draws[0] * num_classes), tf.int32)
    label = tf.minimum(label, num_classes - 1)
    start = draws[1:3]
    video = render_clip(label, start, 0.85 + 0.3 * draws[3], num_frames, resolution, num_classes)
    if with_centres:
        return video, label, clip_centres(label, start, 0.85 + 0.3 * draws[3], num_frames, num_classes)
    return video, label


@gin.configurable("moving_shapes", denylist=["batch_size", "num_frames", "resolution", "num_classes",
                                              "training", "input_context", "start_example", "with_centres"])
def moving_shapes(batch_size, num_frames, resolution, num_classes, training=True, seed=0, input_context=None,
                  eval_examples=1024, start_example=0, with_centres=False):
    """The embedded dataset as tf.data: (video [batch_size, T, H, W, 3] float32 in [-1, 1], label [batch_size]).

    Training: an endless stream of examples start_example, start_example + 1, ... (example i is a pure function
    of (seed, i)); under ``input_context`` with n input pipelines, pipeline k takes its contiguous block of every
    global batch (``data.sharding``). ``start_example`` counts examples over all pipelines (a run resumed after s steps of global
    batch B passes s * B) and is ignored in evaluation.
    Evaluation (training=False): the first ``eval_examples`` examples of seed + 1 (disjoint from training), once.
    batch_size is per replica; incomplete batches are dropped.
    with_centres: (not a gin setting) each element is (video, label, centres [batch, T, 2]), the shape's true
    centre (y, x) per frame in frame widths (``clip_centres``).
    """
    if num_classes < 1:
        raise ValueError(f"moving_shapes needs num_classes >= 1, got {num_classes}.")
    shard, num_shards = 0, 1
    if input_context is not None:
        shard, num_shards = input_context.input_pipeline_id, input_context.num_input_pipelines
    if training:
        indices = sharding.training_indices(start_example, batch_size, input_context)
    else:
        indices = tf.data.Dataset.range(shard, eval_examples, num_shards)
        seed = seed + 1
    make = lambda i: synthetic_example(i, seed, num_frames, resolution, num_classes, with_centres)
    return (indices.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
