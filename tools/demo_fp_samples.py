"""Writes the README's DVD-GAN-FP demo GIF and prints its centroid table: the EMA generator of a gin/demo_fp.gin run
continuing held-out clips, in rows context | prediction | truth (as the run's TensorBoard grid).

    python tools/demo_fp_samples.py --model_dir=/tmp/demo_fp_run --out=docs/demo_fp_samples.gif [--clips=8]

The context row shows the context frames, then holds the last one (what the repeat-the-last-frame baseline
predicts). The table is the run's last centroid record in model_dir/metrics.jsonl (prediction_centroid).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from dvdgan_tf.data import synthetic  # noqa: E402  (registers moving_shapes before the run's config is read)
from dvdgan_tf.io import files  # noqa: E402
from dvdgan_tf.io import video as video_io  # noqa: E402
from dvdgan_tf.metrics import centroid  # noqa: E402
from dvdgan_tf.training import run_dir  # noqa: E402
from dvdgan_tf.training.monitors import SampleWriter, first_batch  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--clips", type=int, default=8, help="held-out clips (columns)")
    parser.add_argument("--scale", type=int, default=2, help="nearest-neighbour upscaling for viewing")
    parser.add_argument("--seed", type=int, default=0, help="the run's train.seed (held-out clips and z)")
    args = parser.parse_args()
    generator, step = run_dir.restore_ema_generator(args.model_dir)
    real = first_batch(synthetic.moving_shapes, generator, args.clips, args.seed)
    samples = SampleWriter(generator, args.model_dir, args.clips, 1, args.seed, real_clips=real)
    videos, rows = samples.grid_videos()
    grid = video_io.video_grid(video_io.to_uint8(videos), rows=rows, padding=2)
    grid = np.repeat(np.repeat(grid, args.scale, axis=1), args.scale, axis=2)
    files.write_bytes(args.out, video_io.encode_gif(grid, fps=4))  # atomic, gs:// too
    print(f"wrote {args.out}: step {step}, {args.clips} held-out clips, rows context | prediction | truth")
    path = os.path.join(args.model_dir, "metrics.jsonl")
    records = []
    if os.path.exists(path):
        with open(path) as f:
            records = [r for r in map(json.loads, f) if r.get("metric") == "centroid_error"]
    if records:
        last = records[-1]
        print(f"centroid error at step {last['step']} on {last['clips']} held-out clips (pixels; ratio "
              f"{last['ratio']:.2f}):")
        print(centroid.format_table({"per_frame": last["per_frame"], "baseline_per_frame": last["baseline_per_frame"],
                                     "mean": last["value"], "baseline_mean": last["baseline"]},
                                    generator.context_frames))


if __name__ == "__main__":
    main()
