"""The work of a preparation, defined once for every runner: what becomes of one video, and how a shard is written.

`process_unit(source, unit, options)` is the per-video work (decode and resize through the source, keep every
`frame_step`-th frame, drop videos shorter than `min_frames`, encode the frames into one `tf.train.Example`) and
returns an `Outcome` per video or skipped input of the unit. `write_shard(job, outcomes)` stores the outcomes of
a shard's units, in unit order, as the shard's TFRecord file and its .json (each atomic: temporary name, then
rename), so a shard is complete or absent. The local runner (`prepare._run_jobs`, worker processes) and the
Beam runner (`prepare_beam`) both call these two functions on the same shard plan, so they store the same
videos in the same shards, in the same order.

Shard files are written through `tf.io.gfile` (`files.atomic_path`, `files.write_text`), so the output folder
may be on gs:// (Dataflow) or any other filesystem TensorFlow reads.
"""
import collections
import dataclasses

from dvdgan_tf.data import records
from dvdgan_tf.data.sources import common as sources
from dvdgan_tf.errors import DataError
from dvdgan_tf.io import files


@dataclasses.dataclass(frozen=True)
class Options:
    """resolution: short side of the stored frames in pixels (the config's RESOLUTION or more).
    frame_format: 'jpeg' (default, quality `jpeg_quality`) or 'png' (lossless, about 20x larger).
    frame_step: store every frame_step-th frame only (2 halves Kinetics' size when it is used with frame
    stride 2; frame-conditional prediction needs 1). min_frames: videos with fewer stored frames are skipped as
    too short. max_frames: store at most this many frames of each video (0: all). videos_per_shard: videos per
    TFRecord shard (BAIR: one input file per shard)."""
    resolution: int
    frame_format: str = "jpeg"
    jpeg_quality: int = 90
    min_frames: int = 16
    max_frames: int = 0
    videos_per_shard: int = 64
    frame_step: int = 1

    def check(self):
        if self.resolution < 1:
            raise DataError(f"--resolution must be a positive number of pixels, got {self.resolution}")
        if self.frame_format not in records.FRAME_FORMATS:
            raise DataError(f"--frame_format must be one of {records.FRAME_FORMATS}, got {self.frame_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise DataError(f"--jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.min_frames < 1 or self.max_frames < 0 or self.videos_per_shard < 1 or self.frame_step < 1:
            raise DataError("--min_frames, --videos_per_shard and --frame_step must be at least 1, --max_frames at "
                            "least 0")
        if self.max_frames and self.max_frames < self.min_frames:
            raise DataError(f"--max_frames={self.max_frames} is below --min_frames={self.min_frames}")


@dataclasses.dataclass(frozen=True)
class ShardJob:
    """One shard to write: which units of which source, and where."""
    source: object
    split: str
    name: str
    units: tuple
    output_dir: str
    options: Options


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the per-video work made of one video (or one input that yields no video): `example` (the
    serialised tf.train.Example) and `num_frames` when it is stored, else `skip` = (reason, detail). `source`
    names the input as text (`sources.printable`); `note` says why decoding stopped early, when it did."""
    source: str
    example: bytes | None = None
    num_frames: int = 0
    skip: tuple | None = None
    note: str | None = None


def process_unit(source, unit, options):
    """The per-video work of one unit of `source`: a list of `Outcome`s, one per video or skipped input, in
    the source's order. Pure: the same unit and options give the same outcomes on any machine."""
    outcomes = []
    step = options.frame_step
    for item in source.read(unit, options.resolution, options.max_frames * step):
        name = sources.printable(item.source)
        if isinstance(item, sources.Skip):
            outcomes.append(Outcome(name, skip=(item.reason, item.detail)))
            continue
        frames = item.frames[::step]
        if len(frames) < options.min_frames:
            outcomes.append(Outcome(name, skip=(sources.TOO_SHORT, f"{len(frames)} frames, fewer than "
                                                                   f"--min_frames={options.min_frames}")))
            continue
        example = records.video_example(frames, item.label, item.source, item.fps / step, options.frame_format,
                                        options.jpeg_quality)
        outcomes.append(Outcome(name, example, len(frames), note=item.note))
    return outcomes


def shard_paths(job):
    """(TFRecord path, .json path) of a shard."""
    return (files.join(job.output_dir, job.name + ".tfrecord"), files.join(job.output_dir, job.name + ".json"))


def write_shard(job, unit_outcomes):
    """Writes one shard from `unit_outcomes`, an iterable of the `process_unit` lists of the job's units in
    unit order (consumed lazily, so the local runner streams), as the TFRecord file and then its .json, both
    atomic. Returns the .json's stats dict: video count, frame-count histogram, skipped inputs
    ([reason, source, detail] rows), early-stop notes, and the record index (`record_bytes`, `record_frames`:
    byte length and frame count of each record, in order)."""
    stats = {"num_videos": 0, "frame_counts": collections.Counter(), "skipped": [], "notes": [],
             "record_frames": []}

    def examples():
        for outcomes in unit_outcomes:
            for outcome in outcomes:
                if outcome.skip:
                    stats["skipped"].append([outcome.skip[0], outcome.source, outcome.skip[1]])
                    continue
                if outcome.note:
                    stats["notes"].append([outcome.source, outcome.note])
                stats["num_videos"] += 1
                stats["frame_counts"][str(outcome.num_frames)] += 1
                stats["record_frames"].append(outcome.num_frames)
                yield outcome.example

    record_path, json_path = shard_paths(job)
    stats["record_bytes"] = records.write_records_atomic(record_path, examples())
    stats["frame_counts"] = dict(stats["frame_counts"])
    records.write_json_atomic(json_path, stats)
    return stats


def is_complete(job):
    """True when both files of the shard exist (each appears only when complete, the .json last)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return all(tf.io.gfile.exists(path) for path in shard_paths(job))
