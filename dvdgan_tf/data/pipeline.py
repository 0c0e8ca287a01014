"""The tf.data input pipeline over prepared data (see `records`): clips of T frames as the paper samples them.

Per video: a clip of `num_frames` frames taken every `frame_stride` frames (Kinetics: 2; frame-conditional
prediction: 1), starting at a random frame in training and at the centred start in evaluation; the short side
resized to `resolution` (only when the data was prepared larger), then a random `resolution` x `resolution` crop
in training, the centre crop in evaluation; values mapped from 0..255 to [-1, 1] (x / 127.5 - 1).

Training: shards shuffled and read in parallel, clips shuffled, repeated forever. Evaluation: one pass, every
video once, in a fixed order (shards read in parallel, interleaved deterministically). Randomness comes from
stateless ops seeded per video by `tf.data.Dataset.random(seed)`, so a deterministic training pipeline repeats
exactly for a seed. Under a distribution strategy each input pipeline
(host) reads its own shards (`input_context`).
"""
import os

import gin
import tensorflow as tf
from absl import logging

from dvdgan_tf.data import records
from dvdgan_tf.data.records import read_class_index  # noqa: F401  (re-exported: the class-index reader)
from dvdgan_tf.errors import DataError

AUTOTUNE = tf.data.AUTOTUNE


def preparation_commands(data_dir, resolution):
    """The dvdgan-prepare-data command lines that make `data_dir` for UCF-101, Kinetics-600 and BAIR."""
    out = f"--output_dir={data_dir} --resolution={resolution}"
    return (f"  UCF-101:      dvdgan-prepare-data --source=ucf101 --video_dir=/path/to/UCF-101 "
            f"--splits_dir=/path/to/ucfTrainTestlist {out}\n"
            f"  Kinetics-600: dvdgan-prepare-data --source=kinetics600 --video_dir=/path/to/kinetics600/clips "
            f"--annotations_dir=/path/to/kinetics600/annotations {out}\n"
            f"  BAIR:         dvdgan-prepare-data --source=bair --video_dir=/path/to/softmotion30_44k "
            f"--output_dir={data_dir} --resolution=64")


def load_metadata(data_dir, resolution, num_classes, split, frame_stride=1):
    """dataset.json of `data_dir` after checking it against the config; raises `DataError` naming the fix."""
    meta = records.read_metadata(data_dir) if os.path.isdir(data_dir) else None
    if meta is None:
        if os.path.isfile(os.path.join(data_dir, records.PLAN_FILE)):
            raise DataError(f"the preparation of {data_dir!r} is incomplete (it has {records.PLAN_FILE} but no "
                            f"{records.METADATA_FILE}): re-run the same dvdgan-prepare-data command to resume it")
        what = "does not exist" if not os.path.isdir(data_dir) else f"holds no prepared data ({records.METADATA_FILE})"
        raise DataError(f"data directory {data_dir!r} {what}. Prepare it with one of:\n"
                        + preparation_commands(data_dir, resolution)
                        + "\nand point the config at it: --gin_param=\"prepared_videos.data_dir = '<dir>'\"")
    classes = len(read_class_index(data_dir))
    if classes != meta["num_classes"]:
        raise DataError(f"{data_dir}: classes.txt lists {classes} classes, dataset.json {meta['num_classes']}: "
                        "prepare the data again")
    if classes != num_classes:
        raise DataError(f"{data_dir} holds {classes} classes but the config has NUM_CLASSES = {num_classes}: set "
                        f"NUM_CLASSES = {classes} or point prepared_videos.data_dir at the right data")
    if meta["resolution"] < resolution:
        raise DataError(f"{data_dir} was prepared at short side {meta['resolution']} pixels, less than the "
                        f"config's RESOLUTION = {resolution}: prepare it again with --resolution={resolution}")
    step = meta["frame_step"]
    if frame_stride % step:
        raise DataError(f"{data_dir} stores one frame in {step} (prepared with --frame_step={step}), so "
                        f"prepared_videos.frame_stride must be a multiple of {step}, not {frame_stride}; prepare "
                        "the data again with --frame_step=1 for this config")
    splits = split.split("+")
    for name in splits:
        if name not in meta["splits"] or not meta["splits"][name]["num_videos"]:
            available = sorted(s for s, v in meta["splits"].items() if v["num_videos"])
            raise DataError(f"{data_dir} has no videos in split {name!r}; it has {available} "
                            "(set prepared_videos.split)")
    return meta


def _usable_videos(meta, splits, needed):
    counts = [(int(n), c) for s in splits for n, c in meta["splits"][s]["frame_counts"].items()]
    return sum(c for n, c in counts if n >= needed), sum(c for _, c in counts)


def _parse(serialized):
    ex = tf.io.parse_single_example(serialized, records.feature_spec())
    return {"frames": tf.sparse.to_dense(ex["frames"]), "label": tf.cast(ex["label"], tf.int32),
            "num_frames": ex["num_frames"], "height": ex["height"], "width": ex["width"]}


def _select_clip(ex, seed, num_frames, frame_stride, training):
    """Picks the encoded frames of one clip: start random in training, centred otherwise."""
    needed = (num_frames - 1) * frame_stride + 1
    max_start = ex["num_frames"] - needed
    start_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if training:
        start = tf.random.stateless_uniform([], start_seed, 0, max_start + 1, dtype=tf.int64)
    else:
        start = max_start // 2
    indices = start + tf.range(num_frames, dtype=tf.int64) * frame_stride
    return {"frames": tf.gather(ex["frames"], indices), "label": ex["label"], "height": ex["height"],
            "width": ex["width"], "seed": crop_seed}


def _crop_offsets(height, width, size, seed, training):
    if training:
        seeds = tf.random.experimental.stateless_split(seed, 2)
        top = tf.random.stateless_uniform([], seeds[0], 0, height - size + 1, dtype=tf.int32)
        left = tf.random.stateless_uniform([], seeds[1], 0, width - size + 1, dtype=tf.int32)
        return top, left
    return (height - size) // 2, (width - size) // 2


def _resized_size(height, width, short_side):
    """(height, width) int32 with the short side resized to `short_side`, rounded as `decode.target_size`."""
    h, w = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
    scale = short_side / tf.minimum(h, w)
    new_h = tf.where(h <= w, tf.constant(short_side, tf.float64), tf.floor(h * scale + 0.5))
    new_w = tf.where(h <= w, tf.floor(w * scale + 0.5), tf.constant(short_side, tf.float64))
    return tf.cast(new_h, tf.int32), tf.cast(new_w, tf.int32)


def _decode_clip(clip, resolution, stored_resolution, frame_format, training):
    """Decodes one clip's frames to float32 [T, R, R, 3] in [-1, 1] (resize if stored larger, then crop)."""
    height, width = tf.cast(clip["height"], tf.int32), tf.cast(clip["width"], tf.int32)
    frame_spec = tf.TensorSpec([None, None, 3], tf.uint8)
    if stored_resolution == resolution:
        top, left = _crop_offsets(height, width, resolution, clip["seed"], training)
        if frame_format == "jpeg":
            window = tf.stack([top, left, resolution, resolution])
            video = tf.map_fn(lambda b: tf.io.decode_and_crop_jpeg(b, window, channels=3), clip["frames"],
                              fn_output_signature=frame_spec)
        else:
            video = tf.map_fn(lambda b: tf.io.decode_png(b, channels=3), clip["frames"], fn_output_signature=frame_spec)
            video = video[:, top:top + resolution, left:left + resolution]
        video = tf.cast(video, tf.float32)
    else:
        decode = tf.io.decode_jpeg if frame_format == "jpeg" else tf.io.decode_png
        video = tf.map_fn(lambda b: decode(b, channels=3), clip["frames"], fn_output_signature=frame_spec)
        new_h, new_w = _resized_size(height, width, resolution)
        video = tf.image.resize(video, tf.stack([new_h, new_w]), method="area")
        top, left = _crop_offsets(new_h, new_w, resolution, clip["seed"], training)
        video = video[:, top:top + resolution, left:left + resolution]
    video = tf.clip_by_value(video / 127.5 - 1.0, -1.0, 1.0)
    video = tf.ensure_shape(video, [clip["frames"].shape[0], resolution, resolution, 3])
    return video, clip["label"]


def _shard_files(files, input_context):
    """This pipeline's share of the shard files, and whether elements must be sharded instead."""
    if input_context is None or input_context.num_input_pipelines == 1:
        return files, False
    n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(files) >= n:
        return files[i::n], False
    return files, True


@gin.configurable("prepared_videos", denylist=["batch_size", "num_frames", "resolution", "num_classes",
                                               "training", "seed", "input_context"])
def prepared_videos(batch_size, num_frames, resolution, num_classes, training=True, seed=0, input_context=None,
                    data_dir=gin.REQUIRED, frame_stride=1, split="train", eval_split=None, deterministic=None,
                    shuffle_buffer=256, cycle_length=8):
    """Batches of clips from the prepared data in `data_dir` (made by dvdgan-prepare-data).

    Args:
      batch_size: clips per batch, per replica (batches are full: the remainder is dropped).
      num_frames, resolution, num_classes: the config's NUM_FRAMES, RESOLUTION, NUM_CLASSES; the data must
        have as many classes and a short side of at least `resolution`.
      training: random clip start and crop, shuffled, repeated forever; else one pass, centred clip and crop.
      seed: seeds every random choice (shuffles, clip starts, crops).
      input_context: a `tf.distribute.InputContext`; each input pipeline reads its own shards.
      data_dir: the prepared data directory (gin: `prepared_videos.data_dir = 'data/ucf101'`).
      frame_stride: take every `frame_stride`-th frame of the source video (Kinetics synthesis 2;
        frame-conditional prediction 1); a multiple of the data's --frame_step.
      split: prepared split(s) to read, e.g. 'train', 'test' or 'train+test'.
      eval_split: split(s) read instead when not training (held-out data, e.g. 'test'); None: `split`.
      deterministic: same elements in the same order for a seed (default: True unless training).
      shuffle_buffer: clips in the shuffle buffer (training). cycle_length: shards read at once.

    Returns:
      A `tf.data.Dataset` of (video float32 [batch_size, num_frames, resolution, resolution, 3] in [-1, 1],
      label int32 [batch_size]). Raises `DataError` for missing, incomplete or mismatched data.
    """
    if frame_stride < 1 or num_frames < 1 or batch_size < 1:
        raise DataError(f"batch_size, num_frames and frame_stride must be at least 1, got {batch_size}, "
                        f"{num_frames}, {frame_stride}")
    if not training and eval_split:
        split = eval_split
    meta = load_metadata(data_dir, resolution, num_classes, split, frame_stride)
    splits = split.split("+")
    frame_stride //= meta["frame_step"]  # in stored frames from here on
    needed = (num_frames - 1) * frame_stride + 1
    usable, total = _usable_videos(meta, splits, needed)
    if usable < batch_size:
        raise DataError(f"{data_dir} ({split}) has {usable} videos of at least {needed} stored frames "
                        f"({num_frames} frames at stride {frame_stride} in stored frames), fewer than one batch of "
                        f"{batch_size}: lower NUM_FRAMES or prepared_videos.frame_stride, or prepare longer videos")
    if usable < total:
        logging.warning("%s: %d of %d videos are shorter than the %d frames a clip needs and are left out",
                        data_dir, total - usable, total, needed)
    deterministic = (not training) if deterministic is None else deterministic
    files = [os.path.join(data_dir, s["file"]) for name in splits for s in meta["splits"][name]["shards"]]
    files, shard_elements = _shard_files(files, input_context)
    pipeline_id = input_context.input_pipeline_id if input_context else 0

    ds = tf.data.Dataset.from_tensor_slices(files)
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(cycle_length, len(files)),
                       num_parallel_calls=AUTOTUNE, deterministic=deterministic or shard_elements)
    if shard_elements:
        ds = ds.shard(input_context.num_input_pipelines, pipeline_id)
    ds = ds.map(_parse, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = ds.filter(lambda ex: ex["num_frames"] >= needed)
    seeds = tf.data.Dataset.random(seed=seed * 1000003 + pipeline_id).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds)).map(
        lambda ex, s: _select_clip(ex, s, num_frames, frame_stride, training))
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed)
    ds = ds.map(lambda clip: _decode_clip(clip, resolution, meta["resolution"], meta["frame_format"], training),
                num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    return ds.with_options(options)
