"""Writes the README's demo sample GIF: the EMA generator of a run, one row per class, fixed z.

    python tools/demo_samples.py --model_dir=runs/demo --out=docs/demo_samples.gif [--per_class=6] [--scale=2]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from dvdgan_tf.training import run_dir  # noqa: E402
from dvdgan_tf.io import files  # noqa: E402
from dvdgan_tf.io import video as video_io  # noqa: E402
from dvdgan_tf.training.monitors import SampleWriter  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--per_class", type=int, default=6)
    parser.add_argument("--scale", type=int, default=2, help="nearest-neighbour upscaling for viewing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    generator, step = run_dir.restore_ema_generator(args.model_dir)
    samples = SampleWriter(generator, args.model_dir, args.per_class, generator.num_classes, args.seed)
    grid = video_io.video_grid(video_io.to_uint8(samples.videos()), rows=samples.rows, padding=2)
    grid = np.repeat(np.repeat(grid, args.scale, axis=1), args.scale, axis=2)
    files.write_bytes(args.out, video_io.encode_gif(grid, fps=6))  # atomic, gs:// too
    print(f"wrote {args.out}: step {step}, {samples.rows} classes x {args.per_class} samples")


if __name__ == "__main__":
    main()
