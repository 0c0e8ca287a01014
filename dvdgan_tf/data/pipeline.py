"""The tf.data input pipeline over prepared data (see `records`): clips of T frames as the paper samples them.

Per video: a clip of `num_frames` frames taken every `frame_stride` frames (Kinetics: 2; frame-conditional
prediction: 1), starting at a random frame in training and at the centred start in evaluation (or the first frame,
`eval_start`); the short side
resized to `resolution` (only when the data was prepared larger), then a random `resolution` x `resolution` crop
in training, the centre crop in evaluation; values mapped from 0..255 to [-1, 1] (x / 127.5 - 1).

Training: an endless stream of examples that is a pure function of (seed, example index i), so that a run
resumed at example i reads exactly what an uninterrupted run would (`start_example`):
- epoch e = i // N, position p = i % N (N: the videos long enough for a clip); the video is
  `tf.random.experimental.index_shuffle(p, seed of (seed, e), N - 1)`: every video once per epoch, in an order
  that differs per epoch;
- the clip start and crop come from stateless random ops keyed by (seed, i);
- the video's record is read by random access: (shard file, byte offset, length) from the record index that
  preparation stores in dataset.json (data prepared without it is indexed when the pipeline is built, from the
  TFRecord headers only), with `os.pread` (local files) or `tf.io.gfile` (gs:// ...) in a `tf.numpy_function`.
  That Python call holds the GIL for a few microseconds per clip; the decoding runs in parallel outside it.
  With n input pipelines (`input_context`), pipeline k takes its contiguous block of every global batch
  (`data.sharding`), so a global batch holds the same clips in the same rows on any number of hosts.
Evaluation: one pass, every video once, in a fixed order (shards read in parallel, interleaved
deterministically), centred clips and crops; under a distribution strategy each input pipeline (host) reads its
own shards.
"""
import hashlib
import os
import struct
import threading

import gin
import numpy as np
import tensorflow as tf
from absl import logging

from dvdgan_tf.data import records, sharding
from dvdgan_tf.data.records import read_class_index  # noqa: F401  (re-exported: the class-index reader)
from dvdgan_tf.errors import DataError
from dvdgan_tf.io import files

AUTOTUNE = tf.data.AUTOTUNE
RECORD_HEADER_BYTES = 12  # TFRecord framing: uint64 length, uint32 masked CRC of the length
RECORD_FRAMING_BYTES = 16  # ... then the data and a uint32 masked CRC of the data
SHUFFLE_SALT = 0x5EED5  # keeps the per-epoch shuffle seeds apart from the per-example clip keys


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
    exists = tf.io.gfile.isdir(data_dir)
    meta = records.read_metadata(data_dir) if exists else None
    if meta is None:
        if tf.io.gfile.exists(files.join(data_dir, records.PLAN_FILE)):
            raise DataError(f"the preparation of {data_dir!r} is incomplete (it has {records.PLAN_FILE} but no "
                            f"{records.METADATA_FILE}): re-run the same dvdgan-prepare-data command to resume it")
        what = "does not exist" if not exists else f"holds no prepared data ({records.METADATA_FILE})"
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


def dataset_identity(data_dir, resolution=None):
    """A string that names the prepared data in `data_dir` and changes whenever it is prepared again: its
    absolute location (the URL for gs:// and other remote paths) and the SHA-256 of its dataset.json, which
    preparation rewrites, with a new creation time, whenever the data changes. Suitable as part of a cache key
    (e.g. for real-data statistics). Raises `DataError` (naming the preparation commands for `resolution`)
    when `data_dir` holds no prepared data."""
    location = os.path.abspath(data_dir) if files.is_local(data_dir) else str(data_dir).rstrip("/")
    path = files.join(location, records.METADATA_FILE)
    if not tf.io.gfile.exists(path):
        raise DataError(f"data directory {data_dir!r} holds no prepared data ({records.METADATA_FILE}). "
                        "Prepare it with one of:\n" + preparation_commands(data_dir, resolution or 128))
    with tf.io.gfile.GFile(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return f"{location}#{records.METADATA_FILE}:sha256:{digest}"


def _usable_videos(meta, splits, needed):
    counts = [(int(n), c) for s in splits for n, c in meta["splits"][s]["frame_counts"].items()]
    return sum(c for n, c in counts if n >= needed), sum(c for _, c in counts)


def _parse(serialized):
    ex = tf.io.parse_single_example(serialized, records.feature_spec())
    return {"frames": tf.sparse.to_dense(ex["frames"]), "label": tf.cast(ex["label"], tf.int32),
            "num_frames": ex["num_frames"], "height": ex["height"], "width": ex["width"]}


EVAL_STARTS = ("centre", "first")


def _select_clip(ex, seed, num_frames, frame_stride, training, eval_start="centre"):
    """Picks the encoded frames of one clip: start random in training; otherwise centred, or at the video's first
    frame with eval_start='first'."""
    needed = (num_frames - 1) * frame_stride + 1
    max_start = ex["num_frames"] - needed
    start_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if training:
        start = tf.random.stateless_uniform([], start_seed, 0, max_start + 1, dtype=tf.int64)
    elif eval_start == "first":
        start = tf.zeros([], tf.int64)
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


def _scan_record_lengths(path):
    """Byte lengths of the records of the TFRecord file `path`, from their 12-byte headers only (seeks)."""
    lengths = []
    with tf.io.gfile.GFile(path, "rb") as f:
        size, position = f.size(), 0
        while position < size:
            f.seek(position)
            header = f.read(RECORD_HEADER_BYTES)
            if len(header) < RECORD_HEADER_BYTES:
                break
            length = struct.unpack("<Q", header[:8])[0]
            lengths.append(length)
            position += length + RECORD_FRAMING_BYTES
    if position != size:
        raise DataError(f"{path} is truncated or not a TFRecord file: prepare the data again")
    return lengths


def _read_frame_counts(path):
    """num_frames of every record of `path` (reads the whole file)."""
    spec = {"num_frames": tf.io.FixedLenFeature([], tf.int64)}
    ds = tf.data.TFRecordDataset(path).map(lambda r: tf.io.parse_single_example(r, spec)["num_frames"])
    return [int(n) for n in ds.as_numpy_iterator()]


def record_index(data_dir, meta, splits, needed):
    """The random-access index of the videos of `splits` with at least `needed` stored frames, in shard order:
    (shard paths, then int64 arrays file_id [N], offset [N] (the record's first byte, at its header), length
    [N] (the record's data bytes)). From the index that preparation stores in dataset.json; for data prepared
    without it, built from the shards' record headers (plus, only when some videos are too short, a read of
    every record's frame count)."""
    paths, file_ids, offsets, lengths = [], [], [], []
    for name in splits:
        all_usable = min(int(n) for n in meta["splits"][name]["frame_counts"]) >= needed
        for shard in meta["splits"][name]["shards"]:
            path = files.join(data_dir, shard["file"])
            sizes = shard.get("record_bytes")
            if sizes is None:
                sizes = _scan_record_lengths(path)
            frames = shard.get("record_frames")
            if frames is None and not all_usable:
                logging.info("%s has no record index (prepared by an older version): reading its frame counts",
                             path)
                frames = _read_frame_counts(path)
            if len(sizes) != shard["num_videos"] or (frames is not None and len(frames) != len(sizes)):
                raise DataError(f"{path} holds {len(sizes)} records but {records.METADATA_FILE} lists "
                                f"{shard['num_videos']}: the data changed after preparation; prepare it again")
            sizes = np.asarray(sizes, np.int64)
            starts = np.concatenate([[0], np.cumsum(sizes + RECORD_FRAMING_BYTES)[:-1]]).astype(np.int64)
            keep = np.ones(len(sizes), bool) if frames is None else np.asarray(frames) >= needed
            file_ids.append(np.full(int(keep.sum()), len(paths), np.int64))
            offsets.append(starts[keep])
            lengths.append(sizes[keep])
            paths.append(path)
    return paths, np.concatenate(file_ids), np.concatenate(offsets), np.concatenate(lengths)


class _RecordReader:
    """Reads record data by (file id, offset, length), checking the record's length header; thread-safe.
    Local files: `os.pread` on descriptors kept open (up to MAX_OPEN; beyond that opened per read). Remote
    files: one `tf.io.gfile.GFile` per thread and file."""
    MAX_OPEN = 128

    def __init__(self, paths):
        self.paths = list(paths)
        self.local = all(files.is_local(p) for p in self.paths)
        self._fds, self._lock, self._thread = {}, threading.Lock(), threading.local()

    def _pread(self, file_id, offset, size):
        fd = self._fds.get(file_id)
        if fd is None:
            with self._lock:
                fd = self._fds.get(file_id)
                if fd is None:
                    fd = os.open(self.paths[file_id], os.O_RDONLY)
                    if len(self._fds) < self.MAX_OPEN:
                        self._fds[file_id] = fd
                    else:
                        try:
                            return os.pread(fd, size, offset)
                        finally:
                            os.close(fd)
        return os.pread(fd, size, offset)

    def _gfile_read(self, file_id, offset, size):
        handles = getattr(self._thread, "handles", None)
        if handles is None:
            handles = self._thread.handles = {}
        if file_id not in handles:
            if len(handles) >= self.MAX_OPEN:
                for handle in handles.values():
                    handle.close()
                handles.clear()
            handles[file_id] = tf.io.gfile.GFile(self.paths[file_id], "rb")
        handle = handles[file_id]
        handle.seek(offset)
        return handle.read(size)

    def __call__(self, file_id, offset, length):
        file_id, offset, length = int(file_id), int(offset), int(length)
        size = RECORD_HEADER_BYTES + length
        data = (self._pread if self.local else self._gfile_read)(file_id, offset, size)
        if len(data) != size or struct.unpack("<Q", data[:8])[0] != length:
            raise DataError(f"{self.paths[file_id]}: no record of {length} bytes at byte {offset}: the file "
                            "changed after preparation; prepare the data again")
        return data[RECORD_HEADER_BYTES:]

    def __del__(self):
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass


def _training_examples(data_dir, meta, splits, needed, seed, input_context, start_example, deterministic,
                       batch_size):
    """The endless training stream of (serialized record, stateless key [2]) of example indices
    start_example, ... of this input pipeline (see the module docstring)."""
    paths, file_ids, offsets, lengths = record_index(data_dir, meta, splits, needed)
    n = len(offsets)
    file_ids, offsets, lengths = (tf.constant(a) for a in (file_ids, offsets, lengths))
    seed = tf.constant(seed, tf.int64)
    reader = _RecordReader(paths)

    def locate(i):
        epoch_seed = tf.random.experimental.stateless_fold_in(tf.stack([seed, SHUFFLE_SALT]), i // n)
        video = tf.random.experimental.index_shuffle(i % n, epoch_seed, tf.constant(n - 1, tf.int64))
        return file_ids[video], offsets[video], lengths[video], tf.stack([seed, i])

    def read(file_id, offset, length, key):
        record = tf.numpy_function(reader, [file_id, offset, length], tf.string, stateful=False)
        return tf.ensure_shape(record, []), key

    ds = sharding.training_indices(start_example, batch_size, input_context).map(locate)
    return ds.map(read, num_parallel_calls=AUTOTUNE, deterministic=deterministic)


def _evaluation_examples(data_dir, meta, splits, needed, input_context, cycle_length, deterministic):
    """One pass over the parsed videos with at least `needed` frames, in shard order, this pipeline's part."""
    paths = [files.join(data_dir, s["file"]) for name in splits for s in meta["splits"][name]["shards"]]
    paths, shard_elements = _shard_files(paths, input_context)
    ds = tf.data.Dataset.from_tensor_slices(paths)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(cycle_length, len(paths)),
                       num_parallel_calls=AUTOTUNE, deterministic=deterministic or shard_elements)
    if shard_elements:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    ds = ds.map(_parse, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    return ds.filter(lambda ex: ex["num_frames"] >= needed)


def _shard_files(paths, input_context):
    """This pipeline's share of the shard files, and whether elements must be sharded instead."""
    if input_context is None or input_context.num_input_pipelines == 1:
        return paths, False
    n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
    if len(paths) >= n:
        return paths[i::n], False
    return paths, True


@gin.configurable("prepared_videos", denylist=["batch_size", "num_frames", "resolution", "num_classes",
                                               "training", "seed", "input_context", "start_example"])
def prepared_videos(batch_size, num_frames, resolution, num_classes, training=True, seed=0, input_context=None,
                    data_dir=gin.REQUIRED, frame_stride=1, split="train", eval_split=None, deterministic=None,
                    shuffle_buffer=None, cycle_length=8, start_example=0, eval_start="centre"):
    """Batches of clips from the prepared data in `data_dir` (made by dvdgan-prepare-data).

    Args:
      batch_size: clips per batch, per replica (batches are full: the remainder is dropped).
      num_frames, resolution, num_classes: the config's NUM_FRAMES, RESOLUTION, NUM_CLASSES; the data must
        have as many classes and a short side of at least `resolution`.
      training: random clip start and crop, every video once per epoch in a shuffled order, forever; else one
        pass, centred clip and crop.
      seed: seeds every random choice (shuffles, clip starts, crops): the training stream is a pure function of
        (seed, example index).
      input_context: a `tf.distribute.InputContext`; in training, input pipeline k of n takes its block of
        every global batch (`data.sharding`); in evaluation, each reads its own shards.
      data_dir: the prepared data directory (gin: `prepared_videos.data_dir = 'data/ucf101'`).
      frame_stride: take every `frame_stride`-th frame of the source video (Kinetics synthesis 2;
        frame-conditional prediction 1); a multiple of the data's --frame_step.
      split: prepared split(s) to read, e.g. 'train', 'test' or 'train+test'.
      eval_split: split(s) read instead when not training (held-out data, e.g. 'test'); None: `split`.
      deterministic: elements in their exact order (default True; False lets parallel decoding deliver out of
        order, which breaks exact resume).
      shuffle_buffer: unused (the training order is an exact per-epoch permutation); accepted so that configs
        binding it still parse. cycle_length: shards read at once in evaluation.
      eval_start: where evaluation clips start: 'centre' (the centred window) or 'first' (the video's first
        frame: BAIR prediction's test clips, the first 16 frames of each trajectory).
      start_example: training only: the stream starts at this example index, counted over all input
        pipelines (a run resumed after s steps of global batch B passes s * B), and then equals the stream
        from 0 without its first start_example examples.

    Returns:
      A `tf.data.Dataset` of (video float32 [batch_size, num_frames, resolution, resolution, 3] in [-1, 1],
      label int32 [batch_size]). Raises `DataError` for missing, incomplete or mismatched data.
    """
    if frame_stride < 1 or num_frames < 1 or batch_size < 1:
        raise DataError(f"batch_size, num_frames and frame_stride must be at least 1, got {batch_size}, "
                        f"{num_frames}, {frame_stride}")
    if eval_start not in EVAL_STARTS:
        raise DataError(f"prepared_videos.eval_start must be one of {EVAL_STARTS}, got {eval_start!r}")
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
    del shuffle_buffer
    deterministic = True if deterministic is None else deterministic
    decode = lambda clip: _decode_clip(clip, resolution, meta["resolution"], meta["frame_format"], training)
    if training:
        if start_example < 0:
            raise DataError(f"start_example must be at least 0, got {start_example}")
        ds = _training_examples(data_dir, meta, splits, needed, seed, input_context, start_example, deterministic,
                                batch_size)
        ds = ds.map(lambda record, key: decode(_select_clip(_parse(record), key, num_frames, frame_stride, True)),
                    num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    else:
        ds = _evaluation_examples(data_dir, meta, splits, needed, input_context, cycle_length, deterministic)
        ds = ds.map(lambda ex: _select_clip(ex, tf.zeros([2], tf.int64), num_frames, frame_stride, False,
                                            eval_start))
        ds = ds.map(decode, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    return ds.with_options(options)
