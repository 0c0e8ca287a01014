"""What train.deterministic costs: demo training speed with and without deterministic TensorFlow kernels.

Each measurement is a fresh process training gin/demo.gin (monitors off) for --steps steps; its speed is the
mean of the loop's own steps/s scalars after the first --skip steps (tracing and warm-up excluded). The two
settings alternate (off, on, off, on, ...) so that drift of this shared machine affects both alike.

    python tools/benchmark_determinism.py            # writes docs/benchmarks/determinism.{md,json}
"""
import argparse
import datetime
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def run_once(deterministic, steps, log_every):
    with tempfile.TemporaryDirectory() as model_dir:
        params = [f"train.num_steps = {steps}", f"train.deterministic = {deterministic}",
                  f"train.log_every = {log_every}", "train.sample_every = 0", "train.class_accuracy_every = 0",
                  "train.checkpoint_every = 0", "train.progress = False"]
        subprocess.run([sys.executable, "-m", "dvdgan_tf.cli.train", "--gin_file=gin/demo.gin",
                        f"--model_dir={model_dir}", *[f"--gin_param={p}" for p in params]],
                       cwd=REPO, check=True, capture_output=True)
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        rates = {}
        for path in glob.glob(os.path.join(model_dir, "events.out.tfevents.*")):
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    if value.tag == "speed/steps_per_sec":
                        rates[event.step] = float(tf.make_ndarray(value.tensor))
        return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--skip", type=int, default=10)
    parser.add_argument("--log_every", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(REPO, "docs", "benchmarks", "determinism"))
    args = parser.parse_args()
    speeds = {False: [], True: []}
    for _ in range(args.repeats):
        for deterministic in (False, True):
            rates = run_once(deterministic, args.steps, args.log_every)
            kept = [r for s, r in rates.items() if s > args.skip]
            speeds[deterministic].append(statistics.mean(kept))
            print(f"deterministic={deterministic}: {speeds[deterministic][-1]:.3f} steps/s", flush=True)
    off, on = statistics.mean(speeds[False]), statistics.mean(speeds[True])
    result = {"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "config": "gin/demo.gin (monitors off)", "steps": args.steps,
              "skip": args.skip, "steps_per_sec": {"off": speeds[False], "on": speeds[True]},
              "mean_off": off, "mean_on": on, "on_over_off": on / off}
    from dvdgan_tf.io import files  # pylint: disable=import-outside-toplevel
    files.write_text(args.out + ".json", json.dumps(result, indent=2) + "\n")
    report = (f"# train.deterministic: demo training speed\n\n`python tools/benchmark_determinism.py`, "
              f"{result['date']}, {result['cpus']} CPUs. Fresh process per run, settings alternated, "
              f"steps/s after step {args.skip} of {args.steps}.\n\n"
              f"| train.deterministic | runs (steps/s) | mean |\n|---|---|---|\n"
              f"| False | {', '.join(f'{v:.3f}' for v in speeds[False])} | {off:.3f} |\n"
              f"| True | {', '.join(f'{v:.3f}' for v in speeds[True])} | {on:.3f} |\n\n"
              f"**on / off = {on / off:.3f}**\n")
    files.write_text(args.out + ".md", report)
    print(f"on/off speed ratio {on / off:.3f}; written to {args.out}.md")


if __name__ == "__main__":
    main()
