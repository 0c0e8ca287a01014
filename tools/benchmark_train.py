"""Training speed, FLOP/s and memory per replica of the DVD-GAN train step, for the demo and the paper configs.

    python tools/benchmark_train.py                  # writes docs/benchmarks/train.{md,json}

On a small shared machine the parts can run as their own invocations and be merged into one report
(docs/benchmarks/train.md was made so: the timed part on the idle machine, then the traces of every config in
bfloat16, the mixed_bfloat16 policy as a TPU trains, and in float32):
    python tools/benchmark_train.py --parts=peak,runs --out=/tmp/a
    python tools/benchmark_train.py --parts=traces --trace_precision=bfloat16 --out=/tmp/b
    python tools/benchmark_train.py --parts=traces --out=/tmp/c
    python tools/benchmark_train.py --parts= --merge=/tmp/a.json,/tmp/b.json,/tmp/c.json
Tracing the 128 and 256 px configs takes about 11 GB of RAM (their variables, Adam slots and EMA, built with zeros)
and a minute per variant. A config missing from a report gets estimates scaled from a traced one (see
``_scaled_estimates``). ``--trace_params`` traces with gin bindings (e.g. "spectral_norm.divide_output = True").

One run measures, each part in its own subprocess (sequentially, with a timeout), so that the ratios compare
numbers of one machine at one time:
- the dense peak: GFLOP/s of a 2048^3 ``tf.matmul`` and of a 3x3 conv (32 images of 32x32x128 -> 128), in float32
  and bfloat16;
- per config, precision, per-replica batch and remat setting: the train step (``GanTrainer.train_step``, the
  loop's own step: d_steps D updates, a G update, the EMA) traced once; its FLOPs counted from the traced graph;
  its activation memory estimated from the graph; where this machine can run it, steps/s, clips/s and peak RSS.

FLOPs: our own count over the traced step's graph (one replica, default strategy; the ops that run, see
``executed_ops``), multiply-adds x 2 of every Conv2D/Conv3D, their input and filter back-propagation ops, MatMul,
BatchMatMul and Einsum, from the ops' static shapes; elementwise ops, BN, resizes and softmax are not counted ("dense FLOPs"). With remat the graph
holds the recomputed forwards too: those are counted as ``flops_executed``; ``flops`` is the model's (remat off).
Cross-checked by hand on one conv (see ``hand_check``) and against TensorFlow's own profiler on a conv graph.

Memory per replica (bytes): weights (every variable of G, D_S, D_T: trainable weights, SN vectors, BN
statistics), optimizer slots (Adam's m and v of every trainable weight, plus counters), EMA (every variable of
G_ema): exact, from the variables. Activations: (a) estimated from the traced graph by a liveness sweep over the
ops that run (``executed_ops``), one at a time in the graph's op order (each op output held from its op until its
last consumer; outputs of Identity, Reshape, ReadVariableOp and similar views share their input's buffer; variables
excluded), the peak of the bytes held: an estimate of a sequential schedule such as XLA's on TPU (whose scheduler
orders ops to lower the peak, and fuses elementwise ops, so it may need less); (b) measured where the config fits this
machine's RAM: peak resident memory (VmHWM, reset by /proc/self/clear_refs after the state is built and the step
traced) during the timed steps minus the resident memory before them.
"""
import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

PAPER_CONFIGS = ["ucf101", "kinetics600_64px_12f", "kinetics600_64px_48f", "kinetics600_128px_12f",
                 "kinetics600_128px_48f", "kinetics600_256px_12f"]
GB = 1e9
TPU_V3_HBM = 16 * 2 ** 30  # a TPU v3 core's HBM: 16 GiB

# ---------------------------------------------------------------------------------------------------- counting

_CONV_FORWARD = {"Conv2D", "Conv3D"}
_CONV_BACKWARD = {"Conv2DBackpropInput", "Conv2DBackpropFilter", "Conv3DBackpropInputV2",
                  "Conv3DBackpropFilterV2", "Conv3DBackpropInput", "Conv3DBackpropFilter"}
_VIEWS = {"Identity", "IdentityN", "Reshape", "Squeeze", "ExpandDims", "StopGradient", "Snapshot",
          "ReadVariableOp", "PreventGradient", "EnsureShape", "Bitcast"}
_NO_BUFFER = {"Const", "VarHandleOp", "Placeholder", "NoOp", "Shape", "ShapeN", "Size", "Rank",
              "AssignVariableOp", "AssignSubVariableOp", "AssignAddVariableOp", "ResourceApplyAdam"}


def _dims(shape):
    return None if shape.rank is None or not shape.is_fully_defined() else [int(d) for d in shape]


def _conv_flops(op):
    """2 x multiply-adds of a conv or conv-gradient op: 2 x (output elements of the forward conv) x (kernel
    volume) x (input channels); each of the two back-propagation ops costs the same as the forward conv."""
    if op.type in _CONV_FORWARD:
        out, kernel = _dims(op.outputs[0].shape), _dims(op.inputs[1].shape)
    elif "Input" in op.type:  # inputs: (input_sizes, filter, out_backprop)
        out, kernel = _dims(op.inputs[2].shape), _dims(op.inputs[1].shape)
    else:  # Filter: inputs (input, filter_sizes, out_backprop); output: the filter gradient
        out, kernel = _dims(op.inputs[2].shape), _dims(op.outputs[0].shape)
    if out is None or kernel is None:
        return None
    return 2 * math.prod(out) * math.prod(kernel[:-1])  # kernel [k.., c_in, c_out]: out already has c_out


def _matmul_flops(op):
    a, out = _dims(op.inputs[0].shape), _dims(op.outputs[0].shape)
    if a is None or out is None:
        return None
    if op.type == "MatMul":
        k = a[0] if op.get_attr("transpose_a") else a[1]
    else:  # BatchMatMul*: contracted dim of a
        k = a[-2] if op.get_attr("adj_x") else a[-1]
    return 2 * math.prod(out) * k


def _einsum_flops(op):
    equation = op.get_attr("equation").decode()
    inputs, _ = equation.split("->")
    sizes = {}
    for term, tensor in zip(inputs.split(","), op.inputs):
        dims = _dims(tensor.shape)
        if dims is None or "." in term:
            return None
        sizes.update(zip(term, dims))
    return 2 * math.prod(sizes.values()) if len(op.inputs) == 2 else None


def executed_ops(graph):
    """The ops of a traced function's graph that TensorFlow runs, in graph order: those its outputs, its control
    outputs (the side effects: variable updates) or a stateful op need, as TensorFlow prunes a function's body
    before running it (XLA drops dead code too). The rest are traced but never run, e.g. gradients that a custom
    gradient (``tf.recompute_grad``) computes for every input while the caller uses some."""
    stack = [t.op for t in graph.outputs] + list(graph.control_outputs)
    stack += [op for op in graph.get_operations() if op.op_def.is_stateful]
    needed = set()
    while stack:
        op = stack.pop()
        if op.name not in needed:
            needed.add(op.name)
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
    return [op for op in graph.get_operations() if op.name in needed]


def count_flops(graph):
    """{op type: FLOPs} of a graph's dense ops that run (``executed_ops``; see the module docstring), and the
    number of such ops whose shapes were not static (not counted)."""
    totals, unknown = {}, 0
    for op in executed_ops(graph):
        if op.type in _CONV_FORWARD or op.type in _CONV_BACKWARD:
            flops = _conv_flops(op)
        elif op.type in ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
            flops = _matmul_flops(op)
        elif op.type == "Einsum":
            flops = _einsum_flops(op)
        else:
            continue
        if flops is None:
            unknown += 1
        else:
            totals[op.type] = totals.get(op.type, 0) + flops
    return totals, unknown


def _nbytes(tensor):
    dims = _dims(tensor.shape)
    if dims is None or tensor.dtype.name in ("resource", "variant", "string"):
        return 0
    try:
        return math.prod(dims) * tensor.dtype.size
    except (TypeError, ValueError):
        return 0


def activation_peak(graph):
    """Peak bytes held by op outputs when the graph's ops that run (``executed_ops``) run one at a time in graph
    order (see the module docstring). Returns (peak bytes, number of ops)."""
    ops = executed_ops(graph)
    position = {op.name: i for i, op in enumerate(ops)}
    root, size, last = {}, {}, {}  # tensor name -> buffer name; buffer -> bytes, last position used
    for i, op in enumerate(ops):
        for tensor in op.inputs:
            buffer = root.get(tensor.name)
            if buffer is not None:
                last[buffer] = max(last[buffer], i)
        for k, tensor in enumerate(op.outputs):
            if op.type in _VIEWS and op.inputs and k < len(op.inputs) and op.inputs[k].name in root:
                root[tensor.name] = root[op.inputs[k].name]
                continue
            if op.type in _NO_BUFFER or op.type in _VIEWS:
                continue
            root[tensor.name] = tensor.name
            size[tensor.name] = _nbytes(tensor)
            last[tensor.name] = i
    events = [0] * (len(ops) + 2)
    for buffer, nbytes in size.items():
        start = position[buffer.rsplit(":", 1)[0]]
        events[start] += nbytes
        events[last[buffer] + 1] -= nbytes
    peak = held = 0
    for delta in events:
        held += delta
        peak = max(peak, held)
    return peak, len(ops)


# ------------------------------------------------------------------------------------------------ child jobs

def _status_kb(field):
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def dense_peak(repeats=10):
    """GFLOP/s of a matmul and of a conv in float32 and bfloat16 (best of ``repeats`` timed calls)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    result = {}
    for dtype in ("float32", "bfloat16"):
        a = tf.cast(tf.random.stateless_normal([2048, 2048], [0, 1]), dtype)
        x = tf.cast(tf.random.stateless_normal([32, 32, 32, 128], [0, 2]), dtype)
        w = tf.cast(tf.random.stateless_normal([3, 3, 128, 128], [0, 3]), dtype)
        cases = {"matmul": (tf.function(lambda: tf.reduce_sum(tf.matmul(a, a))), 2 * 2048 ** 3),
                 "conv": (tf.function(lambda: tf.reduce_sum(tf.nn.conv2d(x, w, 1, "SAME"))),
                          2 * 32 * 32 * 32 * 128 * 9 * 128)}
        for name, (fn, flops) in cases.items():
            fn().numpy()
            best = math.inf
            for _ in range(repeats):
                start = time.perf_counter()
                fn().numpy()
                best = min(best, time.perf_counter() - start)
            result[f"{name}_{dtype}"] = flops / best
        result[dtype] = max(result[f"matmul_{dtype}"], result[f"conv_{dtype}"])
    # The conv's FLOPs from our counter and from TensorFlow's profiler, against the formula above.
    graph = tf.function(lambda: tf.nn.conv2d(x, w, 1, "SAME")).get_concrete_function().graph
    counted, _ = count_flops(graph)
    try:
        opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        opts["output"] = "none"
        profiled = tf.compat.v1.profiler.profile(graph, options=opts).total_float_ops
    except Exception as e:  # pylint: disable=broad-except
        profiled = repr(e)
    result["check_conv"] = {"formula": 2 * 32 * 32 * 32 * 128 * 9 * 128, "ours": counted.get("Conv2D"),
                            "tf_profiler": profiled}
    return result


def _variable_bytes(variables):
    seen, total = set(), 0
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            total += math.prod(v.shape) * (4 if "float32" in str(v.dtype) else 8 if "64" in str(v.dtype) else 4)
    return total


def _set_remat(networks, remat):
    from dvdgan_tf.nets.blocks import DBlock, GBlock  # pylint: disable=import-outside-toplevel
    for net in networks:
        for layer in net._flatten_layers():  # pylint: disable=protected-access
            if isinstance(layer, (GBlock, DBlock)):
                layer.remat = remat


def config_job(job):
    """Builds the config's trainer (one replica), traces its train step, counts FLOPs, estimates the activation
    peak; then, if job['steps'] > 0, runs the step and measures time and peak RSS. job['variants'] (trace-only
    jobs): a list of [remat, batch] traced one after the other on the same networks (the remat flag of every
    block set before each trace); the result then holds one entry per variant."""
    import keras  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from dvdgan_tf import config  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.nets import networks as models  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.nets.generator import build_generator  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.training import loop  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.training.step import GanTrainer  # pylint: disable=import-outside-toplevel
    import gin  # pylint: disable=import-outside-toplevel

    variants = job.get("variants") or [[job["remat"], job["batch"]]]
    config.parse_config([f"gin/{job['config']}.gin"], job.get("params", []))
    d_steps = gin.query_parameter("train.d_steps_per_g_step")
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if job["precision"] == "bfloat16" else "float32")
    init = "orthogonal" if job["steps"] else "zeros"  # trace-only jobs need shapes, not values
    strategy = tf.distribute.get_strategy()
    t0 = time.perf_counter()
    networks = models.build_networks(kernel_initializer=init)
    ema = build_generator(kernel_initializer=init)
    g = networks.G
    models.build_weights_symbolically(networks)
    ema(keras.Input(shape=(g.z_dim,), batch_size=1), keras.Input(shape=(), batch_size=1, dtype="int32"))
    variables = lambda net: net.variables
    trainable = g.trainable_variables + networks.D_S.trainable_variables + networks.D_T.trainable_variables
    g_opt = loop._make_optimizer(1e-4, 0.0, 0.999, g.trainable_variables)  # pylint: disable=protected-access
    d_opt = loop._make_optimizer(  # pylint: disable=protected-access
        5e-4, 0.0, 0.999, networks.D_S.trainable_variables + networks.D_T.trainable_variables)
    shared = {"d_steps": d_steps, "build_s": time.perf_counter() - t0}
    state = {"weights": _variable_bytes(variables(g) + variables(networks.D_S) + variables(networks.D_T)),
             "optimizer_slots": _variable_bytes(g_opt.variables + d_opt.variables),
             "ema": _variable_bytes(variables(ema))}
    shared["parameters"] = {name: sum(math.prod(v.shape) for v in net.trainable_variables)
                            for name, net in networks._asdict().items()}
    shared["trainable_parameters"] = sum(math.prod(v.shape) for v in trainable)
    shared["state_bytes"] = state
    results = []
    for remat, b in variants:
        _set_remat(networks, remat)
        trainer = GanTrainer(strategy, networks, ema, g_opt, d_opt, b, d_steps=d_steps, ema_decay=0.999,
                             ema_start_step=0, seed=0)
        trainer.copy_generator_to_ema()
        out = dict(shared, remat=remat, batch=b)
        _trace_and_run(trainer, g, b, job["steps"], out)
        results.append(out)
    return results if job.get("variants") else results[0]


def _trace_and_run(trainer, g, b, steps, out):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    video = tf.random.stateless_uniform([b, g.num_frames, g.resolution, g.resolution, 3], [0, 9], -1.0, 1.0)
    dataset = tf.data.Dataset.from_tensors((video, tf.zeros([b], tf.int32))).repeat()
    iterator = iter(dataset)
    t0 = time.perf_counter()
    concrete = trainer._one_step.get_concrete_function(iterator)  # pylint: disable=protected-access
    out["trace_s"] = time.perf_counter() - t0
    flops, unknown = count_flops(concrete.graph)
    out["flops_by_op"], out["flops_unknown_ops"] = flops, unknown
    out["flops_executed"] = sum(flops.values())
    out["activation_estimate"], out["graph_ops"] = activation_peak(concrete.graph)
    if steps:
        rss_before = _status_kb("VmRSS") * 1024
        out["peak_reset"] = _reset_peak_rss()  # VmHWM from here on
        t0 = time.perf_counter()
        trainer.train_step(iterator)["G_loss"].numpy()  # first call: graph optimisation, allocations
        out["first_step_s"] = time.perf_counter() - t0
        out["peak_rss_first_step"] = _status_kb("VmHWM") * 1024
        out["rss_after_first_step"] = _status_kb("VmRSS") * 1024
        _reset_peak_rss()
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            trainer.train_step(iterator)["G_loss"].numpy()
            times.append(time.perf_counter() - start)
        out["step_times"] = times
        out["steps_per_s"] = len(times) / sum(times)
        out["peak_rss"] = _status_kb("VmHWM") * 1024
        out["rss_before_steps"] = rss_before
    return out


# ------------------------------------------------------------------------------------------------------ parent

def spawn(job, timeout):
    """Runs ``job`` in a fresh Python process; returns its result dict, or {'error': ...}."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps(job)], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s", "wall_s": timeout}
    wall = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1][:300]
        return {"error": f"exit {proc.returncode}: {tail}", "wall_s": wall}
    result = json.loads(lines[-1][len("RESULT "):])
    for entry in result if isinstance(result, list) else [result]:
        entry["wall_s"] = wall
    return result


def child(job):
    if job["kind"] == "peak":
        result = dense_peak()
    else:
        result = config_job(job)
    print("RESULT " + json.dumps(result), flush=True)


def _gb(x):
    return f"{x / GB:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--configs", default=",".join(["demo"] + PAPER_CONFIGS))
    parser.add_argument("--run", default="demo:8,kinetics600_64px_12f:1",
                        help="config:per-replica batch pairs whose steps are run and timed (RAM permitting)")
    parser.add_argument("--trace_batches", default="1,2", help="per-replica batches traced for every config")
    parser.add_argument("--trace_batch2", default="",
                        help="configs also traced at per-replica batch 2 (the others: computed, 2x batch 1)")
    parser.add_argument("--trace_precision", default="float32", choices=["float32", "bfloat16"],
                        help="compute precision of the traces (bfloat16: the mixed_bfloat16 policy; variables, Adam "
                             "slots and EMA stay float32)")
    parser.add_argument("--trace_params", default="",
                        help="gin bindings for the traces, separated by ';' (e.g. an experimental switch)")
    parser.add_argument("--demo_steps", type=int, default=20)
    parser.add_argument("--paper_steps", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--parts", default="peak,runs,traces", help="which parts to run (comma-separated)")
    parser.add_argument("--merge", default="",
                        help="comma-separated JSON results of earlier partial runs (e.g. --parts=traces run beside "
                             "--parts=peak,runs): their memory entries are added, and their peak and runs where this "
                             "run has none; written as one report")
    parser.add_argument("--out", default=os.path.join(REPO, "docs", "benchmarks", "train"))
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    parts = args.parts.split(",") if args.parts else []
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import keras  # pylint: disable=import-outside-toplevel
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": _cpu_name(), "cpus": os.cpu_count(), "tensorflow": tf.__version__,
               "keras": keras.__version__, "python": platform.python_version(),
               "load_before": os.getloadavg()[0], "peak": None, "runs": [], "memory": []}
    del tf, keras
    if "peak" in parts:
        print("dense peak ...", flush=True)
        results["peak"] = spawn({"kind": "peak"}, args.timeout)
        print(json.dumps(results["peak"]), flush=True)
    runs = [pair.split(":") for pair in args.run.split(",") if pair] if "runs" in parts else []
    for name, batch in runs:  # timed steps, f32 and bf16
        for precision in ("float32", "bfloat16"):
            steps = args.demo_steps if name.startswith("demo") else args.paper_steps
            job = {"kind": "config", "config": name, "batch": int(batch), "precision": precision,
                   "remat": False, "steps": steps}
            print(f"run {job} ...", flush=True)
            result = spawn(job, args.timeout)
            results["runs"].append({"job": job, **result})
            print(json.dumps(result), flush=True)
    for name in (args.configs.split(",") if "traces" in parts else []):  # memory, FLOPs from the traced graph
        batches = [1, 2] if name in args.trace_batch2.split(",") else [int(x) for x in args.trace_batches.split(",")]
        # The demo: remat off at batch 1 only (its memory is small; with the timed run at batch 8 it shows how
        # activations scale with the batch).
        variants = [[False, 1]] if name == "demo" else [[remat, b] for b in batches for remat in (False, True)]
        params = [p.strip() for p in args.trace_params.split(";") if p.strip()]
        job = {"kind": "config", "config": name, "precision": args.trace_precision, "variants": variants,
               "steps": 0, "params": params}
        print(f"trace {job} ...", flush=True)
        result = spawn(job, args.timeout)
        for out in (result if isinstance(result, list) else [result] * len(variants)):
            i = len([m for m in results["memory"] if m["job"]["config"] == name])
            remat, batch = variants[i]
            results["memory"].append({"job": {"config": name, "batch": batch, "remat": remat,
                                              "precision": args.trace_precision, "params": params}, **out})
        print(json.dumps(result), flush=True)
    results["load_after"] = os.getloadavg()[0]
    for i, path in enumerate(p for p in args.merge.split(",") if p):
        with open(path, encoding="utf-8") as f:
            other = json.load(f)
        if i == 0 and not parts:  # only merging: the first file's run is the report's run
            results.update({k: other[k] for k in ("date", "load_before", "load_after")})
            results.update(peak=other["peak"], runs=other["runs"], memory=other["memory"])
            results["merged"] = list(other.get("merged", []))  # a report that was itself merged keeps its list
            continue
        results["memory"] += other["memory"]
        # An entry that failed in one run (e.g. a job stopped by hand) and succeeded in another: keep the success.
        done = {_key(m) for m in results["memory"] if "error" not in m}
        results["memory"] = [m for m in results["memory"] if "error" not in m or _key(m) not in done]
        results["runs"] = results["runs"] or other["runs"]
        results["peak"] = results["peak"] or other["peak"]
        results.setdefault("merged", []).append({k: other[k] for k in ("date", "load_before", "load_after")})
    write_report(results, args.out)


def _key(entry):
    return (entry["job"]["config"], entry["job"]["batch"], entry["job"]["remat"],
            entry["job"].get("precision", "float32"), tuple(entry["job"].get("params", [])))


def _cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_report(results, out):
    from dvdgan_tf.io import files  # pylint: disable=import-outside-toplevel
    files.write_text(out + ".json", json.dumps(results, indent=2) + "\n")
    files.write_text(out + ".md", render(results))
    print(f"written to {out}.md and {out}.json")


# (frames, resolution, trainable parameters of G, D_S, D_T) of the paper configs: the README's table (from
# `dvdgan-train --dry_run`, checked by tests/test_nets_paper_configs.py against an independent count).
PAPER_SIZES = {"ucf101": (16, 128, 309.8e6, 154.9e6, 157.0e6),
               "kinetics600_64px_12f": (12, 64, 212.8e6, 79.4e6, 81.5e6),
               "kinetics600_64px_48f": (48, 64, 212.8e6, 79.4e6, 81.5e6),
               "kinetics600_128px_12f": (12, 128, 309.8e6, 154.9e6, 157.0e6),
               "kinetics600_128px_48f": (48, 128, 309.8e6, 154.9e6, 157.0e6),
               "kinetics600_256px_12f": (12, 256, 311.6e6, 174.8e6, 176.9e6)}


def _group(entry):
    """(precision, gin bindings) of a memory entry: its table (entries of earlier reports: float32, none)."""
    return entry["job"].get("precision", "float32"), tuple(entry["job"].get("params", []))


def _scaled_estimates(results, group=("float32", ())):
    """Rows for the paper configs this run could not trace (RAM, time): state from their parameter counts;
    activations from a config traced at batch 1 and 2, split into a part that grows with the batch (b2 - b1, per
    clip) and a part that does not (b1 minus that: weight-sized temporaries such as W / sigma, gradients and the
    optimizer's temporaries). The per-clip part is scaled by frames x pixels (an upper bound: D_S sees k = 8 frames
    whatever the clip length, and the low-resolution stages do not grow with the resolution), the fixed part by
    the parameter count."""
    traced = {(m["job"]["config"], m["job"]["batch"], m["job"]["remat"]): m for m in results["memory"]
              if "error" not in m and _group(m) == group}
    base_name = next((n for n in PAPER_CONFIGS if (n, 2, False) in traced and (n, 1, False) in traced), None)
    missing = [n for n in PAPER_CONFIGS if (n, 1, False) not in traced]
    if base_name is None or not missing:
        return []
    t0, r0, *p0 = PAPER_SIZES[base_name]
    split = {}
    for remat in (False, True):
        if (base_name, 1, remat) in traced and (base_name, 2, remat) in traced:
            one, two = (traced[(base_name, b, remat)]["activation_estimate"] for b in (1, 2))
            split[remat] = (two - one, 2 * one - two)  # (per clip, fixed)
    lines = ["", f"**Estimates** ({group[0]} compute{_params_text(group)}) for the paper configs not traced here "
                 f"(this machine's RAM and time): weights, "
                 f"Adam slots and EMA from their parameter counts (4 bytes each; the non-trainable SN vectors and "
                 f"BN statistics, under 0.1%, left out). Activations from {base_name}'s traces at batch 1 and 2 (same "
                 f"remat setting): per clip "
                 + ", ".join(f"{split[r][0] / GB:.2f} GB (remat {'on' if r else 'off'})" for r in sorted(split))
                 + " (batch 2 minus batch 1), and a part that does not grow with the batch "
                 + ", ".join(f"{split[r][1] / GB:.2f} GB (remat {'on' if r else 'off'})" for r in sorted(split))
                 + f" (weight-sized temporaries: each layer's W / sigma, gradients, the optimizer's temporaries). "
                 f"The per-clip part is scaled by (frames x pixels) / ({t0} x {r0}^2), an upper bound (D_S sees k = 8 "
                 f"frames whatever the clip length; the low-resolution stages do not grow with the resolution); the "
                 f"fixed part by the parameter count.", "",
             "| config | batch | remat | weights | Adam slots | EMA | activations (estimate) | total (GB, estimate) | "
             "fits 16 GiB |", "|---|---|---|---|---|---|---|---|---|"]
    for name in missing:
        frames, res, g, d_s, d_t = PAPER_SIZES[name]
        weights, slots, ema = 4 * (g + d_s + d_t), 8 * (g + d_s + d_t), 4 * g
        for batch in (1, 2):
            for remat in sorted(split):
                per_clip, fixed = split[remat]
                act = (per_clip * frames * res ** 2 / (t0 * r0 ** 2) * batch + fixed * (g + d_s + d_t) / sum(p0))
                total = weights + slots + ema + act
                lines.append(f"| {name} | {batch} | {'on' if remat else 'off'} | {_gb(weights)} | {_gb(slots)} | "
                             f"{_gb(ema)} | {_gb(act)} | {_gb(total)} | {'yes' if total <= TPU_V3_HBM else 'no'} |")
    return lines


def _linearity(results):
    """', e.g. the demo's estimate: X at batch 1, Y at batch 8 (Y / 8X = r)' from a trace and a timed run."""
    base = {(m["job"]["config"], m["job"]["batch"]): m for m in results["memory"]
            if "error" not in m and not m["job"]["remat"] and _group(m) == ("float32", ())}
    for run in results["runs"]:
        job = run["job"]
        one = base.get((job["config"], 1))
        if "error" in run or one is None or job["batch"] == 1 or job["precision"] != "float32":
            continue
        ratio = run["activation_estimate"] / (job["batch"] * one["activation_estimate"])
        return (f"; e.g. {job['config']}'s estimate is {one['activation_estimate'] / 1e6:.0f} MB at batch 1 and "
                f"{run['activation_estimate'] / 1e6:.0f} MB at batch {job['batch']}, {ratio:.2f} x "
                f"{job['batch']} x the batch-1 value")
    return ""


def render(results):
    """The markdown report of ``results`` (see main)."""
    peak = results["peak"] or {"error": "not run in this invocation"}
    lines = [
        "# The train step: speed, FLOP/s against the dense peak, memory per replica", "",
        f"Generated by `python tools/benchmark_train.py` on {results['date']}: {results['machine']} "
        f"({results['cpus']} cores, shared with other jobs: 1-minute load {results['load_before']:.1f} before, "
        f"{results.get('load_after', 0):.1f} after), TensorFlow {results['tensorflow']}, Keras {results['keras']}, "
        f"Python {results['python']}. One replica (default strategy), no XLA. Each part runs in its own process, one "
        "after the other; the speed ratios compare numbers of one run."]
    for other in results.get("merged", []):
        lines[-1] += (f" Merged with the memory traces of a run started {other['date']} (load "
                      f"{other['load_before']:.1f} before, {other['load_after']:.1f} after).")
    lines.append("")
    if "error" in peak:
        lines += [f"Dense peak: failed ({peak['error']}).", ""]
    else:
        lines += [
            "## Dense peak of this machine", "",
            "| dtype | matmul 2048^3 | conv 3x3, 32x32x32x128 -> 128 | peak (the larger) |", "|---|---|---|---|"]
        for dtype in ("float32", "bfloat16"):
            lines.append(f"| {dtype} | {peak[f'matmul_{dtype}'] / 1e9:.0f} GFLOP/s | "
                         f"{peak[f'conv_{dtype}'] / 1e9:.0f} GFLOP/s | {peak[dtype] / 1e9:.0f} GFLOP/s |")
        check = peak["check_conv"]
        lines += ["", f"FLOP count cross-check on that conv: by hand 2 x 32x32x32 x 128 x 9 x 128 = "
                      f"{check['formula']:,}; our graph count {check['ours']:,}; TensorFlow's profiler "
                      f"(`tf.compat.v1.profiler`, float_operation) {check['tf_profiler']}.", ""]
    lines += ["## Speed of the train step", "",
              "Steps/s over the timed steps after the first (tracing and graph optimisation excluded). A step is "
              "d_steps D updates (each on a real and a generated batch) and one G update; clips/s counts the real "
              "clips a step consumes (d_steps x batch). FLOPs per step: counted from the traced step's graph (see "
              "the tool's docstring). Ratio: achieved FLOP/s over the float32 dense peak of this run (and over the "
              "bfloat16 peak for bfloat16).", "",
              "| config | batch | dtype | steps/s | clips/s | GFLOP per step | achieved GFLOP/s | / f32 peak | "
              "/ own dtype peak | peak RSS (GB) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for run in results["runs"]:
        job = run["job"]
        if "error" in run:
            lines.append(f"| {job['config']} | {job['batch']} | {job['precision']} | not run: {run['error']} "
                         "| | | | | | |")
            continue
        flops = run["flops_executed"]
        achieved = flops * run["steps_per_s"]
        own = peak.get(job["precision"], float("nan")) if "error" not in peak else float("nan")
        f32 = peak.get("float32", float("nan")) if "error" not in peak else float("nan")
        lines.append(f"| {job['config']} | {job['batch']} | {job['precision']} | {run['steps_per_s']:.3f} | "
                     f"{run['steps_per_s'] * run['d_steps'] * job['batch']:.2f} | {flops / 1e9:.1f} | "
                     f"{achieved / 1e9:.0f} | {achieved / f32:.2f} | {achieved / own:.2f} | "
                     f"{_gb(run['peak_rss'])} |")
    for group in dict.fromkeys(_group(m) for m in results["memory"]):
        lines += _memory_section(results, group)
    measured = [r for r in results["runs"] if "error" not in r]
    if measured:
        lines += ["", "Estimate against measurement (the timed runs above): resident memory (RSS) of the process "
                      "with the state built and the step traced; its peak during the first step (graph "
                      "optimisation included) and during the timed steps, each minus the RSS before it; the graph "
                      "estimate. The CPU allocator keeps freed memory, so the timed steps' increase over the RSS "
                      "after the first step understates the activations, and the first step's includes graph "
                      "optimisation.",
                  "", "| config | batch | dtype | RSS before the steps (GB) | peak over all steps - RSS before | "
                  "first step: peak - RSS before | timed steps: peak - RSS after the first step | graph estimate |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in measured:
            job = r["job"]
            peak = max(r["peak_rss_first_step"], r["peak_rss"])
            lines.append(f"| {job['config']} | {job['batch']} | {job['precision']} | {_gb(r['rss_before_steps'])} | "
                         f"{_gb(peak - r['rss_before_steps'])} | "
                         f"{_gb(r['peak_rss_first_step'] - r['rss_before_steps'])} | "
                         f"{_gb(r['peak_rss'] - r['rss_after_first_step'])} | {_gb(r['activation_estimate'])} |")
    return "\n".join(lines) + "\n"


def _params_text(group):
    return f", gin: {'; '.join(group[1])}" if group[1] else ""


def _memory_section(results, group):
    """The memory table (traced configs, then the estimates) of one (precision, gin bindings) group."""
    memory = [m for m in results["memory"] if _group(m) == group]
    if group == ("float32", ()):
        lines = ["", "## Memory per replica (float32)", ""]
    else:
        intro = ("Traced under the `mixed_bfloat16` policy, as a TPU trains: layers compute in bfloat16 while the "
                 "variables, Adam slots and EMA stay float32 (so weights, Adam slots and EMA are the float32 "
                 "table's), BN statistics and losses in float32. " if group[0] == "bfloat16" else "")
        if group[1]:
            intro += f"Traced with the gin bindings `{'`, `'.join(group[1])}`."
        if any(p.startswith("spectral_norm.divide_output") for p in group[1]):
            intro += (" The switch (see `dvdgan_tf/nets/spectral_norm.py`) computes op(x, W) / sigma in SNDense and "
                      "SNConv calls, so W / sigma is not kept for the backward pass; the blocks' rematerialised path "
                      "still passes W / sigma into `checkpointed`, so the remat-on rows hardly change.")
        lines = ["", f"## Memory per replica ({group[0]} compute{_params_text(group)})", "", intro.strip(), ""]
    lines += [
              "Weights, optimizer slots and EMA: exact, from the variables (float32; they stay float32 under "
              "mixed_bfloat16). Activations: estimated from the traced step's graph (liveness sweep, see the "
              "tool's docstring), the peak over the whole step (d_steps D updates and the G update). Rows marked "
              "*computed* were not traced at batch 2: their activations (and FLOPs) are 2x those of batch 1 "
              "(activations scale linearly with the per-replica batch" + _linearity(results) + "; 2x is an upper "
              "bound, since the estimate also holds weight-sized temporaries that do not grow with the batch: each "
              "layer's normalised kernel W / sigma and the gradients). Total = state + activations. TPU v3: 16 GiB "
              "(17.18 GB) of HBM per core.", "",
              "| config | batch | remat | params G / D_S / D_T (M) | weights | Adam slots | EMA | activations | "
              "total (GB) | fits 16 GiB | GFLOP per step (executed) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    by_key = {(m["job"]["config"], m["job"]["batch"], m["job"]["remat"]): m for m in memory}
    for name in dict.fromkeys(m["job"]["config"] for m in memory):
        for batch in (1, 2):
            for remat in (False, True):
                entry, note = by_key.get((name, batch, remat)), ""
                if entry is None:
                    base = by_key.get((name, 1, remat))
                    if base is None or "error" in base:
                        continue
                    entry = dict(base, activation_estimate=2 * base["activation_estimate"],
                                 flops_executed=2 * base["flops_executed"])
                    note = " *computed*"
                if "error" in entry:
                    lines.append(f"| {name} | {batch} | {remat} | failed: {entry['error']} | | | | | | | |")
                    continue
                s, p = entry["state_bytes"], entry["parameters"]
                total = sum(s.values()) + entry["activation_estimate"]
                lines.append(
                    f"| {name} | {batch} | {'on' if remat else 'off'} | {p['G'] / 1e6:.1f} / {p['D_S'] / 1e6:.1f} / "
                    f"{p['D_T'] / 1e6:.1f} | {_gb(s['weights'])} | {_gb(s['optimizer_slots'])} | {_gb(s['ema'])} | "
                    f"{_gb(entry['activation_estimate'])}{note} | {_gb(total)} | "
                    f"{'yes' if total <= TPU_V3_HBM else 'no'} | {entry['flops_executed'] / 1e9:.0f}{note} |")
    lines += _scaled_estimates(results, group)
    return lines


if __name__ == "__main__":
    main()
