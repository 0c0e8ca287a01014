"""Benchmark: separable vs full (non-separable) self-attention of ``dvdgan_tf.nets.attention``.

Compares ``SelfAttention(axes=(1, 2, 3))`` (one attention map over all T*H*W positions) with
``SeparableSelfAttention()`` (height, then width, then time attention) on a [B, T, H, W, C] float32 input,
forward pass only, ``training=True``, on the CPU. Defaults: B=4, T=12, H=W=32, C=64.

Method
------
Every measurement runs in a fresh worker subprocess (``--_worker=VARIANT``), so that one variant's allocations
cannot leak into the other's numbers; this script, called without ``--_worker``, starts the workers one after
the other and collects their results (one JSON line each on stdout). All ratios come from one invocation,
because the machine is noisy.

* Setup (all workers): import TensorFlow, create the full-size random input, wrap the layer in a
  ``tf.function`` and call it once on a tiny input [1, 2, 2, 2, C]. That builds the weights (they depend on C
  only), traces the function and starts the TF runtime.
* Baseline worker (``--_baseline``): the setup only, for each variant, then it reports its peak RSS.
* Measurement worker: the setup, then one warm-up forward pass on the full-size input (which also traces the
  function for that shape), then ``--repeats`` timed forward passes. It reports its peak RSS and the wall
  times of the timed passes.
* Peak memory of a variant = peak RSS (``resource.getrusage(...).ru_maxrss``) of its measurement worker minus
  that of its baseline worker: the memory the big forward pass needs on top of everything else.
* Time of a variant = median wall time of the timed passes (the output is pulled to numpy, so every pass has
  finished when the clock stops).

Also reported: the analytic number of attention-map entries per sample, (T*H*W)^2 for full attention and
H*H*W*T + W*W*H*T + T*T*H*W for separable attention (with the largest of the three maps: the three stages run
one after the other, so only one map needs to be alive at a time), and the size of that largest map for the
whole batch in float32, a lower bound for the net peak memory of a variant that materialises its maps.

The project's goal is at least 50x less memory and 10x less time for separable attention. Results are printed
as a table and written to ``<out_dir>/attention.json`` and ``<out_dir>/attention.md``. Progress goes to stderr.

Usage (from the repository root):  python tools/benchmark.py [--repeats 10] [--out_dir docs/benchmarks]
"""
import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("full", "separable")
GOALS = {"memory": 50.0, "time": 10.0}  # required full/separable ratios
GIB = 1024 ** 3
MIB = 1024 ** 2


def log(message):
    print(f"[benchmark] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=12, help="T")
    parser.add_argument("--size", type=int, default=32, help="H = W")
    parser.add_argument("--channels", type=int, default=64, help="C")
    parser.add_argument("--repeats", type=int, default=10, help="timed forward passes after one warm-up")
    parser.add_argument("--out_dir", default=str(REPO_ROOT / "docs" / "benchmarks"))
    parser.add_argument("--_worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--_baseline", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def settings(args):
    return {"batch": args.batch, "frames": args.frames, "height": args.size, "width": args.size,
            "channels": args.channels, "dtype": "float32", "training": True, "repeats": args.repeats}


# --------------------------------------------------------------------------------------------- worker side


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def time_forward(forward, x, repeats):
    """One warm-up pass, then ``repeats`` timed passes; returns the wall times in seconds."""
    forward(x).numpy()
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        forward(x).numpy()
        times.append(time.perf_counter() - start)
        log(f"  pass {i + 1}/{repeats}: {times[-1]:.4f} s")
    return times


def run_worker(args):
    """Setup, then (unless baseline) the big forward passes; prints one JSON line on stdout."""
    sys.path.insert(0, str(REPO_ROOT))
    import tensorflow as tf
    from dvdgan_tf.nets.attention import make_attention

    tf.random.set_seed(0)
    x = tf.random.normal((args.batch, args.frames, args.size, args.size, args.channels))
    layer = make_attention(args._worker)
    forward = tf.function(lambda v: layer(v, training=True))
    forward(tf.random.normal((1, 2, 2, 2, args.channels))).numpy()
    result = {"variant": args._worker, "baseline": args._baseline}
    if not args._baseline:
        result["times_s"] = time_forward(forward, x, args.repeats)
    result["peak_rss_bytes"] = peak_rss_bytes()
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------------------------- driver side


def spawn_worker(args, variant, baseline):
    role = "baseline" if baseline else "measurement"
    log(f"{variant}: {role} worker")
    cmd = [sys.executable, str(Path(__file__).resolve()), f"--_worker={variant}", f"--batch={args.batch}",
           f"--frames={args.frames}", f"--size={args.size}", f"--channels={args.channels}",
           f"--repeats={args.repeats}"] + (["--_baseline"] if baseline else [])
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    log(f"{variant}: {role} done in {time.perf_counter() - start:.1f} s, "
        f"peak RSS {result['peak_rss_bytes'] / MIB:.1f} MiB")
    return result


def map_entries(t, h, w):
    """Attention-map entries per sample: full (T*H*W)^2; separable per stage, total and max."""
    full = (t * h * w) ** 2
    stages = {"height": h * h * w * t, "width": w * w * h * t, "time": t * t * h * w}
    return {"full": {"total": full, "max": full},
            "separable": {"total": sum(stages.values()), "max": max(stages.values()), "per_stage": stages}}


def measure(args):
    entries = map_entries(args.frames, args.size, args.size)
    variants = {}
    for variant in VARIANTS:
        base = spawn_worker(args, variant, baseline=True)
        run = spawn_worker(args, variant, baseline=False)
        variants[variant] = {
            "map_entries_per_sample": entries[variant],
            "largest_map_bytes": entries[variant]["max"] * args.batch * 4,  # one float32 map for the batch
            "baseline_peak_rss_bytes": base["peak_rss_bytes"],
            "peak_rss_bytes": run["peak_rss_bytes"],
            "net_peak_bytes": run["peak_rss_bytes"] - base["peak_rss_bytes"],
            "times_s": run["times_s"],
            "median_time_s": statistics.median(run["times_s"]),
        }
    return variants


def ratios(variants):
    full, sep = variants["full"], variants["separable"]
    return {
        "map_entries_total": full["map_entries_per_sample"]["total"] / sep["map_entries_per_sample"]["total"],
        "map_entries_max": full["map_entries_per_sample"]["max"] / sep["map_entries_per_sample"]["max"],
        "memory": full["net_peak_bytes"] / max(sep["net_peak_bytes"], 1),
        "time": full["median_time_s"] / sep["median_time_s"],
    }


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def tf_version():
    out = subprocess.run([sys.executable, "-c", "import tensorflow as tf, keras; print(tf.__version__, "
                          "keras.__version__)"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True)
    tf_v, keras_v = out.stdout.split()
    return tf_v, keras_v


def environment():
    tf_v, keras_v = tf_version()
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf_v, "keras": keras_v}


def fmt_bytes(n):
    return f"{n / GIB:.2f} GiB" if abs(n) >= GIB else f"{n / MIB:.1f} MiB"


def fmt_entries(e):
    return f"{e['total']:,}" if e["total"] == e["max"] else f"{e['total']:,} (max {e['max']:,})"


def table_rows(report):
    """Rows (header first) shared by the console table and the Markdown table."""
    rows = [["variant", "map entries / sample", "largest map (batch)", "net peak memory", "baseline RSS",
             "median time", "min / max time"]]
    for name, v in report["variants"].items():
        rows.append([name, fmt_entries(v["map_entries_per_sample"]), fmt_bytes(v["largest_map_bytes"]),
                     fmt_bytes(v["net_peak_bytes"]),
                     fmt_bytes(v["baseline_peak_rss_bytes"]), f"{v['median_time_s']:.4f} s",
                     f"{min(v['times_s']):.4f} / {max(v['times_s']):.4f} s"])
    r = report["ratios"]
    rows.append(["full / separable", f"{r['map_entries_total']:.0f}x (max: {r['map_entries_max']:.0f}x)",
                 f"{r['map_entries_max']:.0f}x", f"{r['memory']:.1f}x", "", f"{r['time']:.1f}x", ""])
    return rows


def verdict(report):
    r, met = report["ratios"], report["goals_met"]
    return (f"memory {r['memory']:.1f}x (goal >= {GOALS['memory']:.0f}x: {'met' if met['memory'] else 'NOT met'}), "
            f"time {r['time']:.1f}x (goal >= {GOALS['time']:.0f}x: {'met' if met['time'] else 'NOT met'})")


def format_console(report):
    rows = table_rows(report)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + ["", "full / separable: " + verdict(report)])


def format_markdown(report):
    env, s = report["environment"], report["settings"]
    rows = table_rows(report)
    table = ["| " + " | ".join(row) + " |" for row in rows]
    table.insert(1, "|" + "---|" * len(rows[0]))
    return "\n".join([
        "# Separable vs full self-attention",
        "",
        f"Generated by `python tools/benchmark.py` on {env['date']}.",
        "",
        f"- Input [B, T, H, W, C] = [{s['batch']}, {s['frames']}, {s['height']}, {s['width']}, {s['channels']}], "
        f"{s['dtype']}, forward pass with training=True, median of {s['repeats']} passes after one warm-up "
        "(`tf.function`).",
        f"- CPU: {env['cpu_model']} ({env['cpu_count']} cores), TensorFlow {env['tensorflow']}, "
        f"Keras {env['keras']}, Python {env['python']}.",
        "- Net peak memory: peak RSS of a fresh worker process that runs the forward passes, minus that of a "
        "worker doing the same setup (imports, input, weights, tracing on a tiny input) without them.",
        "",
        *table,
        "",
        f"Full / separable: {verdict(report)}.",
        "",
    ])


def write_outputs(report, out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "attention.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "attention.md").write_text(format_markdown(report))
    log(f"wrote {out_dir / 'attention.json'} and {out_dir / 'attention.md'}")


def main(argv=None):
    args = parse_args(argv)
    if args._worker:
        run_worker(args)
        return
    start = time.perf_counter()
    report = {"environment": environment(), "settings": settings(args), "variants": measure(args)}
    report["ratios"] = ratios(report["variants"])
    report["goals"] = GOALS
    report["goals_met"] = {k: report["ratios"][k] >= GOALS[k] for k in GOALS}
    print(format_console(report))
    write_outputs(report, args.out_dir)
    log(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
