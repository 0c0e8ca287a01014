"""The prepared-data format: what `dvdgan-prepare-data` writes and `prepared_videos` reads.

A prepared data directory holds:
- `{split}-{i:05d}-of-{n:05d}.tfrecord`: shards of `tf.train.Example`s, one per video, with the features of
  `FEATURES`: `frames` (one encoded image per frame, JPEG or PNG, all frames of the video in order, short side
  resized to the directory's resolution), `label` (class index), `num_frames`, `height`, `width`, `fps` (0 when
  unknown) and `source` (the source file or record it came from).
- `{split}-{i:05d}-of-{n:05d}.json` beside each shard: its video count, frame-count histogram, the inputs
  it skipped, and its record index (`record_bytes`, `record_frames`: each record's byte length and frame
  count, in file order). A shard file exists only when complete: it is written under a temporary name
  (`files.atomic_path`) and renamed before its .json is written.
- `classes.txt`: the class index, one `index name` line per class, indices 0..N-1 in order.
- `preparation.json`: the plan (source, settings, units per split), written when a preparation starts.
- `dataset.json`: written last, when every shard is complete: the format version, resolution, frame format,
  frame step (1: every frame stored; k: every k-th), class count, per-split shard lists, video counts and
  frame-count histograms (each shard entry carries its record index, used by the training pipeline for random
  access; data prepared before the index existed has none and is indexed when the pipeline is built), and the
  skipped-input counts. Training reads only data whose dataset.json exists.
- `skipped.tsv`: every skipped input with its reason (`reason<TAB>source<TAB>detail`).
"""
import json

import numpy as np

from dvdgan_tf.errors import DataError
from dvdgan_tf.io import files

FORMAT_NAME = "dvdgan_tf.prepared_videos"
FORMAT_VERSION = 1
METADATA_FILE = "dataset.json"
PLAN_FILE = "preparation.json"
CLASS_INDEX_FILE = "classes.txt"
SKIPPED_FILE = "skipped.tsv"
FRAME_FORMATS = ("jpeg", "png")


def _tf():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf


def feature_spec():
    """The `tf.io.parse_single_example` spec of one prepared video."""
    tf = _tf()
    return {
        "frames": tf.io.VarLenFeature(tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "num_frames": tf.io.FixedLenFeature([], tf.int64),
        "height": tf.io.FixedLenFeature([], tf.int64),
        "width": tf.io.FixedLenFeature([], tf.int64),
        "fps": tf.io.FixedLenFeature([], tf.float32),
        "source": tf.io.FixedLenFeature([], tf.string),
    }


def encode_frames(frames, frame_format="jpeg", jpeg_quality=90):
    """Encodes uint8 RGB frames [T, H, W, 3] into a list of T JPEG or PNG byte strings. PNG is lossless; JPEG
    uses 4:2:0 chroma (the sources' own chroma resolution) and `jpeg_quality` (at 90: about 39 dB PSNR,
    mean absolute error about 2 of 255, 60% of quality 95's size, 5% of PNG's)."""
    tf = _tf()
    frames = np.asarray(frames, dtype=np.uint8)
    if frame_format == "jpeg":
        return [tf.io.encode_jpeg(f, quality=jpeg_quality).numpy() for f in frames]
    if frame_format == "png":
        return [tf.io.encode_png(f, compression=1).numpy() for f in frames]
    raise ValueError(f"frame_format must be one of {FRAME_FORMATS}, got {frame_format!r}")


def video_example(frames, label, source, fps, frame_format="jpeg", jpeg_quality=90):
    """Serialises one video (uint8 [T, H, W, 3]) as a `tf.train.Example` byte string in the format above."""
    tf = _tf()
    frames = np.asarray(frames, dtype=np.uint8)
    num_frames, height, width, _ = frames.shape

    def ints(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

    feature = {
        "frames": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=encode_frames(frames, frame_format, jpeg_quality))),
        "label": ints(label), "num_frames": ints(num_frames), "height": ints(height), "width": ints(width),
        "fps": tf.train.Feature(float_list=tf.train.FloatList(value=[float(fps)])),
        "source": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[str(source).encode("utf-8", "surrogateescape")])),
    }
    # deterministic: map entries in key order, so the bytes do not depend on the process (hash seed)
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def shard_name(split, index, num_shards):
    """File name (without extension) of shard `index` of `num_shards` of `split`."""
    return f"{split}-{index:05d}-of-{num_shards:05d}"


def write_json_atomic(path, obj):
    """Writes `obj` as JSON atomically (`files.write_text`: temporary name, then rename)."""
    files.write_text(path, json.dumps(obj, indent=1, sort_keys=True))


def write_text_atomic(path, text):
    """Writes `text` atomically (`files.write_text`)."""
    files.write_text(path, text)


def write_records_atomic(path, serialized_examples):
    """Writes the byte strings of an iterable into a TFRecord file that appears at `path` only when complete
    (`files.atomic_path`). Returns the byte length of each record, in order: record k starts at byte
    `sum(lengths[:k]) + 16 * k` of the file (TFRecord framing: uint64 length, uint32 masked CRC of the length,
    the data, uint32 masked CRC of the data)."""
    tf = _tf()
    lengths = []
    with files.atomic_path(path) as tmp:
        with tf.io.TFRecordWriter(tmp) as writer:
            for record in serialized_examples:
                writer.write(record)
                lengths.append(len(record))
    return lengths


def class_index_text(class_names):
    """The classes.txt content for a list of class names (index = position)."""
    return "".join(f"{i} {name}\n" for i, name in enumerate(class_names))


def read_class_index(data_dir):
    """Class names of a prepared data directory, from its classes.txt; `names[label]` is label's class.
    Raises `DataError` when the file is missing or malformed."""
    path = files.join(data_dir, CLASS_INDEX_FILE)
    if not _tf().io.gfile.exists(path):
        raise DataError(f"{path} not found: {data_dir!r} is not a prepared data directory (make one with "
                        "dvdgan-prepare-data)")
    names = []
    for line_no, line in enumerate(files.read_text(path).splitlines(keepends=True), 1):
        line = line.rstrip("\n")
        if not line:
            continue
        index, _, name = line.partition(" ")
        if not index.isdigit() or int(index) != len(names) or not name:
            raise DataError(f"{path}, line {line_no}: expected '{len(names)} <class name>', got {line!r}")
        names.append(name)
    return names


def read_metadata(data_dir):
    """The parsed dataset.json of a prepared data directory, or None when it has none.
    Raises `DataError` when it is unreadable or of another format version."""
    path = files.join(data_dir, METADATA_FILE)
    tf = _tf()
    if not tf.io.gfile.exists(path):
        return None
    try:
        meta = json.loads(files.read_text(path))
    except (OSError, ValueError, tf.errors.OpError) as e:
        raise DataError(f"cannot read {path}: {e}; re-run dvdgan-prepare-data for this directory") from e
    if meta.get("format") != FORMAT_NAME or meta.get("version") != FORMAT_VERSION:
        raise DataError(f"{path} is not a {FORMAT_NAME} version {FORMAT_VERSION} file (found "
                        f"{meta.get('format')!r} version {meta.get('version')!r}); prepare the data again with "
                        "this version's dvdgan-prepare-data")
    return meta
