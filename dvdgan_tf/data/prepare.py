"""Preparing a raw source into the prepared-data format of `records`: resumable, parallel, never partial.

`prepare(source, output_dir, options)` lists the source, writes (or checks, when resuming) the plan, then writes
every shard that is not complete yet, in worker processes when `workers > 1`. A shard's TFRecord file and its
.json appear only when complete (temporary name, then rename), so an interrupted run keeps its complete shards
and a re-run of the same command writes only the rest; no video is written twice. Bad inputs (unreadable or
corrupt files, videos shorter than `min_frames`, unknown labels, missing files, empty folders) are counted,
logged with their name and listed in skipped.tsv; the run goes on. Files and folders whose names are not
valid UTF-8 are skipped as `undecodable_name` and listed with those bytes escaped as \\xNN (`sources.printable`).
Worker processes end with the process that started them, even when it is killed with SIGKILL. dataset.json is
written last; a run that wrote no usable video raises `DataError`.
"""
import collections
import concurrent.futures
import ctypes
import dataclasses
import datetime
import hashlib
import json
import multiprocessing
import os
import re
import signal
import sys
import threading
import time

from dvdgan_tf.io import console as progress
from dvdgan_tf.io import files
from dvdgan_tf.data import prepare_work as work
from dvdgan_tf.data import records
from dvdgan_tf.data.sources import common as sources
from dvdgan_tf.errors import DataError

Options = work.Options  # re-exported: the preparation's settings
ShardJob = work.ShardJob
RUNNERS = ("direct", "dataflow", "flink", "spark")  # Apache Beam runners (prepare_beam); None: local processes
LOGGED_PER_REASON = 10  # skipped inputs logged one by one per reason; the rest are only in skipped.tsv
_OUR_FILE = re.compile(r"^(\.tmp-.*|\..+" + re.escape(files.TMP_MARK) + r".*|.+-\d{5}-of-\d{5}\.(tfrecord|json)|"
                       + "|".join(re.escape(n) for n in (records.METADATA_FILE, records.PLAN_FILE,
                                                         records.CLASS_INDEX_FILE, records.SKIPPED_FILE))
                       + ")$")


@dataclasses.dataclass
class Summary:
    """What a preparation produced: videos per split, skipped inputs per reason, shards written and kept."""
    output_dir: str
    videos: dict
    skipped: dict
    kept_after_error: int
    shards_written: int
    shards_kept: int

    def text(self):
        lines = [f"prepared data in {self.output_dir}: " + (", ".join(
            f"{split} {n} videos" for split, n in sorted(self.videos.items())) or "no videos"),
                 f"shards: {self.shards_written} written now, {self.shards_kept} kept from an earlier run"]
        if self.skipped:
            lines.append("skipped: " + ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
                         + f" (list in {files.join(self.output_dir, records.SKIPPED_FILE)})")
        if self.kept_after_error:
            lines.append(f"{self.kept_after_error} videos kept up to a decoding error (see the log)")
        return "\n".join(lines)


class _SkipLog:
    """Logs the first LOGGED_PER_REASON skipped inputs of each reason, counts the rest."""

    def __init__(self):
        self.counts = collections.Counter()

    def add(self, reason, source, detail):
        source = sources.printable(source)
        self.counts[reason] += 1
        if self.counts[reason] <= LOGGED_PER_REASON:
            progress.log(f"skipped {source} ({reason}): {detail}")
        elif self.counts[reason] == LOGGED_PER_REASON + 1:
            progress.log(f"more inputs skipped as {reason}: all are listed in {records.SKIPPED_FILE} at the end")


def write_shard(job, on_unit=None):
    """Writes one shard with the per-video work of `prepare_work` (streaming, unit by unit) and returns its
    stats dict (`prepare_work.write_shard`). on_unit(1) is called after each unit is read."""
    def unit_outcomes():
        for unit in job.units:
            yield work.process_unit(job.source, unit, job.options)
            if on_unit:
                on_unit(1)

    return work.write_shard(job, unit_outcomes())


def _plan(source, listing, options):
    def fingerprint(shards):
        keys = json.dumps([[[u.key, u.label] for u in shard] for shard in shards]).encode("utf-8")
        return hashlib.sha256(keys).hexdigest()

    return {"format": records.FORMAT_NAME, "version": records.FORMAT_VERSION, "source": source.name,
            "settings": source.settings(), "options": dataclasses.asdict(options),
            "class_names": listing.class_names,
            "splits": {split: {"num_shards": len(shards), "num_units": sum(len(s) for s in shards),
                               "fingerprint": fingerprint(shards)} for split, shards in listing.shards.items()}}


def _start_or_resume(output_dir, plan, overwrite):
    """Writes the plan and class index, or checks that an existing plan is the same. Returns True if resuming."""
    plan_path = files.join(output_dir, records.PLAN_FILE)
    if overwrite:
        for name in _gfile().listdir(output_dir):
            if _OUR_FILE.match(name.rstrip("/")):
                _gfile().remove(files.join(output_dir, name.rstrip("/")))
    elif _gfile().exists(plan_path):
        old = json.loads(files.read_text(plan_path))
        new = json.loads(json.dumps(plan))  # as it would read back (tuples become lists)
        if old != new:
            changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise DataError(f"{output_dir} holds a preparation with other inputs or settings (differing: "
                            f"{', '.join(changed)}); re-run with the same arguments to resume it, or pass "
                            "--overwrite to start again, or choose another --output_dir")
        # Temporaries left by an interrupted run were never published, so never read: remove them (this also
        # matches ".tmp-*", the names of earlier versions).
        files.remove_leftovers(output_dir, also_suffixes=())
        return True
    records.write_text_atomic(files.join(output_dir, records.CLASS_INDEX_FILE),
                              records.class_index_text(plan["class_names"]))
    records.write_json_atomic(plan_path, plan)
    return False


def _jobs(source, listing, output_dir, options):
    jobs = []
    for split, shards in sorted(listing.shards.items()):
        for i, units in enumerate(shards):
            jobs.append(work.ShardJob(source, split, records.shard_name(split, i, len(shards)), tuple(units),
                                 output_dir, options))
    return jobs


def _run_jobs(jobs, workers, on_done, bar):
    """Writes the shards of `jobs`, calling on_done(job, stats) after each; in-process when workers == 1."""
    done = 0

    def advance(n):
        nonlocal done
        done += n
        bar.update(done)

    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            on_done(job, write_shard(job, advance))
        return
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(write_shard, job): job for job in jobs}
        try:
            for future in concurrent.futures.as_completed(futures):
                job = futures[future]
                advance(len(job.units))
                on_done(job, future.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL_SECONDS = 0.5


def _die_with_parent(parent_pid):
    """Worker-process initializer: the worker ends when the process that started it ends, even by kill -9
    (which runs no clean-up in the parent). On Linux the kernel sends it SIGKILL (prctl PR_SET_PDEATHSIG);
    everywhere a daemon thread also checks every PARENT_POLL_SECONDS that the parent is still its parent.
    With the workers gone, multiprocessing's resource tracker (kept alive only by the open pipe that the parent
    and the workers hold) exits too."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the polling below still applies
    if os.getppid() != parent_pid:  # the parent died before the line above ran
        os._exit(1)

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def _gfile():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.io.gfile


def _drop_undecodable(listing):
    """Moves units whose name is not valid UTF-8 (they cannot be stored or listed as text) to listing.skipped."""
    for split, shards in listing.shards.items():
        kept = []
        for shard in shards:
            good = [u for u in shard if sources.is_decodable(u.key)]
            listing.skipped += [sources.Skip(sources.UNDECODABLE_NAME, sources.printable(u.key),
                                             "file name is not valid UTF-8 (rename it to include it)")
                                for u in shard if not sources.is_decodable(u.key)]
            if good:
                kept.append(good)
        listing.shards[split] = kept
    return listing


def prepare(source, output_dir, options, splits=None, workers=1, overwrite=False, on_shard_done=None,
            show_progress=True, runner=None, pipeline_args=()):
    """Prepares `source` into `output_dir` (created if needed); resumes an interrupted run with the same inputs.

    splits: names of the source's splits to prepare (None: all). workers: processes writing shards (local
    runner), or the DirectRunner's worker count. runner: None (local worker processes) or one of `RUNNERS`, an
    Apache Beam runner (`prepare_beam`; needs the `beam` extra) given `pipeline_args`, the runner's own options
    (e.g. ['--project=p', '--region=r', '--temp_location=gs://b/tmp']). Both runners write the same shards.
    on_shard_done(shard_name): called after each shard is published (local runner). Returns a `Summary`;
    raises `DataError` for unusable inputs or when no usable video was written.
    """
    options.check()
    beam_runner = None
    if runner is not None:
        from dvdgan_tf.data import prepare_beam  # pylint: disable=import-outside-toplevel
        beam_runner = prepare_beam.BeamRunner(runner, pipeline_args, workers, output_dir)  # fails early
    elif pipeline_args:
        raise DataError(f"runner options {list(pipeline_args)} were given without --runner; name a Beam runner "
                        f"({', '.join(RUNNERS)}) or leave them out")
    listing = _drop_undecodable(source.listing(options.videos_per_shard))
    if splits:
        unknown = sorted(set(splits) - set(listing.shards))
        if unknown:
            raise DataError(f"split(s) {unknown} not in the source; it has {sorted(listing.shards)}")
        listing.shards = {s: listing.shards[s] for s in splits}
    files.makedirs(output_dir)
    skip_log = _SkipLog()
    for skip in listing.skipped:
        skip_log.add(skip.reason, skip.source, skip.detail)
    plan = _plan(source, listing, options)
    _start_or_resume(output_dir, plan, overwrite)
    jobs = _jobs(source, listing, output_dir, options)
    todo = [job for job in jobs if not work.is_complete(job)]
    kept = len(jobs) - len(todo)
    if kept:
        progress.log(f"resuming: {kept} of {len(jobs)} shards are complete and kept")

    def on_done(job, stats):
        for reason, name, detail in stats["skipped"]:
            skip_log.add(reason, name, detail)
        for name, note in stats["notes"]:
            progress.log(f"kept {name} up to a decoding error: {note}")
        if on_shard_done:
            on_shard_done(job.name)

    if beam_runner is not None:
        with progress.ProgressBar(len(todo), enabled=show_progress, unit="shard",
                                  description=f"preparing {source.name} ({runner})") as bar:
            beam_runner.run(todo, bar)
        for job in todo:
            on_done(job, json.loads(files.read_text(work.shard_paths(job)[1])))
    else:
        with progress.ProgressBar(sum(len(j.units) for j in todo), enabled=show_progress, unit="input",
                                  description=f"preparing {source.name}") as bar:
            _run_jobs(todo, workers, on_done, bar)
    summary = _finish(output_dir, plan, jobs, listing.skipped)
    summary.shards_written, summary.shards_kept = len(todo), kept
    if not sum(summary.videos.values()):
        raise DataError(summary.text() + "\nnothing usable was written: check the inputs named in the log")
    return summary


def _finish(output_dir, plan, jobs, listing_skipped):
    """Aggregates the shards' stats into dataset.json and skipped.tsv. Returns a `Summary` (shard counts 0)."""
    splits = {split: {"num_videos": 0, "shards": [], "frame_counts": collections.Counter()}
              for split in plan["splits"]}
    skipped = [[s.reason, sources.printable(s.source), s.detail] for s in listing_skipped]
    kept_after_error = 0
    for job in jobs:
        stats = json.loads(files.read_text(work.shard_paths(job)[1]))
        split = splits[job.split]
        split["num_videos"] += stats["num_videos"]
        split["frame_counts"].update(stats["frame_counts"])
        if stats["num_videos"]:
            shard = {"file": job.name + ".tfrecord", "num_videos": stats["num_videos"]}
            if "record_bytes" in stats:  # absent in shards written by versions before the record index
                shard.update(record_bytes=stats["record_bytes"], record_frames=stats["record_frames"])
            split["shards"].append(shard)
        skipped += stats["skipped"]
        kept_after_error += len(stats["notes"])
    for split in splits.values():
        split["frame_counts"] = dict(sorted(split["frame_counts"].items(), key=lambda kv: int(kv[0])))
    cell = lambda x: sources.printable(x).replace("\t", " ").replace("\n", " ")
    records.write_text_atomic(files.join(output_dir, records.SKIPPED_FILE),
                              "".join("\t".join(cell(x) for x in row) + "\n" for row in skipped))
    videos = {name: split["num_videos"] for name, split in splits.items()}
    if sum(videos.values()):
        options = plan["options"]
        records.write_json_atomic(files.join(output_dir, records.METADATA_FILE), {
            "format": records.FORMAT_NAME, "version": records.FORMAT_VERSION, "source": plan["source"],
            "settings": plan["settings"], "resolution": options["resolution"],
            "frame_format": options["frame_format"], "jpeg_quality": options["jpeg_quality"],
            "frame_step": options["frame_step"], "min_frames": options["min_frames"],
            "max_frames": options["max_frames"],
            "num_classes": len(plan["class_names"]), "splits": splits,
            "skipped": dict(collections.Counter(row[0] for row in skipped)),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
    return Summary(output_dir, videos, dict(collections.Counter(row[0] for row in skipped)), kept_after_error,
                   0, 0)
