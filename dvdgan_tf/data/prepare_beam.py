"""Preparation as an Apache Beam pipeline: the same shards as the local runner, on any Beam runner.

`dvdgan-prepare-data --runner=direct|dataflow|flink|spark ... -- <the runner's pipeline options>` runs the
shards that are not complete yet as one pipeline:

    shard names ─ read each shard's units ─ Reshuffle ─ per-video work ─ GroupByKey(shard) ─ write shard
                  (the driver's plan file)              (prepare_work.       (units back in     (prepare_work.
                                                         process_unit)        plan order)        write_shard)

The driver (`prepare.prepare`) lists the source, writes the plan and, after the pipeline, dataset.json and
skipped.tsv exactly as for the local runner. The units of the shards to write go to a hidden plan file in the
output folder (one JSON line per shard, removed afterwards), and the pipeline is created from the shard names
and byte offsets of their lines only, so its graph stays small for Kinetics' 400 000 videos (Dataflow refuses
job graphs over 10 MB). Workers read that file and write the shards through `tf.io.gfile`, so the output folder
(and the raw inputs) may be on gs://. A shard file is written under a temporary name and renamed, so a retried
bundle (runners retry failed work) can only replace a shard with the same bytes, and a shard is complete or
absent. Workers need dvdgan_tf installed: on Dataflow pass `--setup_file=./setup.py` from a clone (or
`--requirements_file`/a container image).
"""
import dataclasses
import json
import threading

from dvdgan_tf.data import prepare_work as work
from dvdgan_tf.data.sources import common as sources
from dvdgan_tf.errors import DataError
from dvdgan_tf.io import files

RUNNER_CLASSES = {"direct": "DirectRunner", "dataflow": "DataflowRunner", "flink": "FlinkRunner",
                  "spark": "SparkRunner"}
PLAN_NAME = ".beam-units" + files.TMP_MARK + "plan"  # hidden, marked temporary: removed as a leftover
POLL_SECONDS = 2.0


def _beam():
    try:
        import apache_beam as beam  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise DataError('--runner needs Apache Beam, which is not installed: pip install "dvdgan_tf[beam]" '
                        '(for Dataflow also "apache-beam[gcp]"), or leave out --runner to use local worker '
                        'processes') from e
    return beam


def pipeline_options(runner, pipeline_args=(), workers=1):
    """Beam PipelineOptions for `runner` (a key of RUNNER_CLASSES) and the runner's own options. For the
    DirectRunner without options of its own, `workers` > 1 asks for that many worker processes."""
    _beam()
    from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=import-outside-toplevel
    if runner not in RUNNER_CLASSES:
        raise DataError(f"--runner must be one of {', '.join(RUNNER_CLASSES)}, got {runner!r}")
    args = list(pipeline_args)
    bad = [a for a in args if not a.startswith("--")]
    if bad:
        raise DataError(f"runner options must look like --name=value, got {bad}; pass them after a lone '--', "
                        "e.g. dvdgan-prepare-data --runner=dataflow ... -- --project=P --region=R")
    if runner == "direct" and workers > 1 and not any(a.startswith("--direct_") for a in args):
        args += [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    return PipelineOptions(args, runner=RUNNER_CLASSES[runner], save_main_session=False)


class _ReadUnits:
    """(shard name, byte offset, length) -> (shard name, (unit index, Unit)) for each unit of the shard,
    read from the plan file."""

    def __init__(self, plan_path):
        self.plan_path = plan_path

    def __call__(self, element):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        name, offset, length = element
        with tf.io.gfile.GFile(self.plan_path, "rb") as f:
            f.seek(offset)
            entry = json.loads(f.read(length).decode("utf-8"))
        if entry["shard"] != name:
            raise RuntimeError(f"{self.plan_path}: the line at byte {offset} is shard {entry['shard']}, not {name}")
        for index, (key, label) in enumerate(entry["units"]):
            yield name, (index, sources.Unit(entry["split"], key, label))


class _ProcessUnit:
    """(shard name, (unit index, Unit)) -> (shard name, (unit index, [Outcome])): the per-video work."""

    def __init__(self, shards):
        self.shards = shards  # {name: (ShardJob without its units, number of units)}

    def __call__(self, element):
        name, (index, unit) = element
        job = self.shards[name][0]
        return name, (index, work.process_unit(job.source, unit, job.options))


class _WriteShard:
    """(shard name, [(unit index, [Outcome])]) -> shard name, after writing the shard in unit order."""

    def __init__(self, shards):
        self.shards = shards

    def __call__(self, element):
        name, indexed = element
        indexed = sorted(indexed, key=lambda pair: pair[0])
        job, num_units = self.shards[name]
        if [i for i, _ in indexed] != list(range(num_units)):
            raise RuntimeError(f"shard {name}: expected units 0..{num_units - 1}, got {[i for i, _ in indexed]}")
        work.write_shard(job, (outcomes for _, outcomes in indexed))
        return name


def _write_plan(path, jobs):
    """Writes one JSON line per job ({"shard", "split", "units": [[key, label], ...]}); returns the
    (name, offset, length) of each line."""
    lines, spans, offset = [], [], 0
    for job in jobs:
        line = (json.dumps({"shard": job.name, "split": job.split,
                            "units": [[u.key, u.label] for u in job.units]}) + "\n").encode("utf-8")
        spans.append((job.name, offset, len(line)))
        lines.append(line)
        offset += len(line)
    files.write_bytes(path, b"".join(lines))
    return spans


class BeamRunner:
    """Writes shard jobs with an Apache Beam pipeline on `runner` (see the module docstring)."""

    def __init__(self, runner, pipeline_args=(), workers=1, output_dir=None):
        self.runner = runner
        self.options = pipeline_options(runner, pipeline_args, workers)
        if runner == "dataflow" and output_dir is not None and files.is_local(output_dir):
            raise DataError(f"--runner=dataflow writes from Google Cloud workers, which cannot reach the local "
                            f"--output_dir={output_dir}: use a gs:// folder (and gs:// inputs)")

    def run(self, jobs, bar=None):
        """Writes every job's shard; `bar.update(n)` is called as shards appear (polled)."""
        if not jobs:
            return
        beam = _beam()
        output_dir = jobs[0].output_dir
        plan_path = files.join(output_dir, PLAN_NAME)
        spans = _write_plan(plan_path, jobs)
        shards = {job.name: (dataclasses.replace(job, units=()), len(job.units)) for job in jobs}
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(jobs, bar, stop), daemon=True) if bar else None
        try:
            if watcher:
                watcher.start()
            with beam.Pipeline(options=self.options) as pipeline:
                _ = (pipeline
                     | "ShardsToWrite" >> beam.Create(spans)
                     | "ReadUnits" >> beam.FlatMap(_ReadUnits(plan_path))
                     | "SpreadUnits" >> beam.Reshuffle()
                     | "DecodeResizeEncode" >> beam.Map(_ProcessUnit(shards))
                     | "GroupByShard" >> beam.GroupByKey()
                     | "WriteShard" >> beam.Map(_WriteShard(shards)))
        except Exception as e:  # the runner's own errors (options it refuses, a job that failed, no job server)
            if isinstance(e, DataError):
                raise
            detail = "; ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__
            raise DataError(f"the {self.runner} pipeline failed ({type(e).__name__}: {detail[:600]}); fix that "
                            f"(--verbose shows the traceback) and re-run the same command: shards already "
                            f"written are kept") from e
        finally:
            stop.set()
            if watcher:
                watcher.join()
            files.remove(plan_path)
        missing = [job.name for job in jobs if not work.is_complete(job)]
        if missing:
            raise DataError(f"the {self.runner} pipeline ended but {len(missing)} shard(s) are missing, e.g. "
                            f"{missing[0]}; re-run the same command to write them")
        if bar:
            bar.update(len(jobs))


def _watch(jobs, bar, stop):
    """Updates the progress bar with the number of jobs whose shard is complete, until `stop` is set."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    output_dir = jobs[0].output_dir
    wanted = {job.name + ".json" for job in jobs}
    while not stop.wait(POLL_SECONDS):
        try:
            found = {p.rstrip("/").rsplit("/", 1)[-1] for p in tf.io.gfile.glob(files.join(output_dir, "*.json"))}
        except tf.errors.OpError:
            continue
        bar.update(len(wanted & found))
