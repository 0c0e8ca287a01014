"""The tf.distribute strategies dvdgan-train and dvdgan-eval run under, made in one place, and what the training
loop needs to know about them (which process is the chief, agreeing across workers, naming a lost worker).

  auto          TPU when a TPU is named (``tpu``), else MultiWorkerMirroredStrategy when TF_CONFIG names a cluster
                of several tasks, else MirroredStrategy over all local GPUs if there are any, else the default
                strategy (one CPU).
  one_device    the default strategy: one device (TensorFlow places ops on the first GPU if there is one).
                'default' is another name for it.
  mirrored      MirroredStrategy over all local GPUs (on a machine without GPUs, the CPU).
  multi_worker  MultiWorkerMirroredStrategy over the cluster in the TF_CONFIG environment variable (every process
                of the job runs the same command with its own TF_CONFIG task); all-reduce with NCCL on GPUs, ring
                on CPUs. A lost worker is detected by TensorFlow's coordination service (heartbeats, about 10 s
                measured here): every collective op is aborted and the training loop ends with
                ``WorkerLostError`` naming the worker. ``collective_timeout_s`` (> 0) also ends a collective that
                a worker that is alive but stuck never joins.
  tpu           TPUStrategy on the Cloud TPU named by ``tpu`` ('local' on a TPU VM, else the TPU's name or
                grpc:// address).

Imports TensorFlow only inside its functions, so that the binaries can list the names before the slow import.
"""
import json
import os
import re
import socket

from dvdgan_tf.errors import ConfigError, DvdganError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
ALIASES = {"default": "one_device"}  # the name of one_device before the list grew
TF_CONFIG = "TF_CONFIG"
_CLUSTER_JOBS = ("chief", "worker")  # the jobs that train (an "evaluator" task does not take part)


class WorkerLostError(DvdganError):
    """A worker of a multi-worker job stopped answering (killed, crashed, its host gone) or a collective timed
    out; the job cannot go on. Restarting every worker resumes from the last checkpoint."""


def _tf():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf


def _first_line(error):
    text = getattr(error, "message", None) or str(error)
    return (str(text).strip().splitlines() or [type(error).__name__])[0][:300]


def read_tf_config(environ=None):
    """The parsed TF_CONFIG of the environment: {"cluster": {job: [address, ...]}, "task": {"type", "index"}}.

    Raises ConfigError (one line) when it is missing or malformed: not JSON, no cluster of chief/worker
    addresses "host:port", or a task that is not one of them."""
    environ = os.environ if environ is None else environ
    example = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": '
               '"worker", "index": 0}}\' (index 1 on host2)')
    text = environ.get(TF_CONFIG, "").strip()
    if not text:
        raise ConfigError(f"--strategy=multi_worker needs the environment variable {TF_CONFIG} naming the cluster "
                          f"and this process's task, {example}.")
    try:
        config = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{TF_CONFIG} is not valid JSON ({e}); {example}.") from e
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not any(cluster.get(job) for job in _CLUSTER_JOBS):
        raise ConfigError(f"{TF_CONFIG} has no \"cluster\" with a \"worker\" (or \"chief\") list of addresses; "
                          f"{example}.")
    for job, addresses in cluster.items():
        if (not isinstance(addresses, list) or
                not all(isinstance(a, str) and re.fullmatch(r"[^\s:]+:\d+", a) for a in addresses)):
            raise ConfigError(f"{TF_CONFIG}: cluster[{job!r}] must be a list of \"host:port\" addresses, got "
                              f"{addresses!r}; {example}.")
    if len(cluster.get("chief", [])) > 1:
        raise ConfigError(f"{TF_CONFIG}: a cluster has at most one chief, got {cluster['chief']!r}.")
    task = config.get("task")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ConfigError(f"{TF_CONFIG} needs \"task\": {{\"type\": one of {sorted(cluster)}, \"index\": n}} "
                          f"naming this process, got {task!r}; {example}.")
    index = task.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[task["type"]]):
        raise ConfigError(f"{TF_CONFIG}: task index {index!r} is not one of the {len(cluster[task['type']])} "
                          f"{task['type']} addresses (0 to {len(cluster[task['type']]) - 1}).")
    return config


def _cluster_size(environ=None):
    """The number of training tasks TF_CONFIG names (0 when it is unset or names none)."""
    try:
        cluster = json.loads((environ or os.environ).get(TF_CONFIG, "") or "{}").get("cluster", {})
        return sum(len(cluster.get(job, [])) for job in _CLUSTER_JOBS)
    except (ValueError, AttributeError, TypeError):
        return 0


def resolve_name(name, tpu=None, num_gpus=0, environ=None):
    """The strategy ``name`` stands for (``auto`` and aliases resolved): one of STRATEGIES but 'auto'."""
    name = ALIASES.get(name, name)
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")
    if name == "auto":
        if tpu:
            return "tpu"
        if _cluster_size(environ) > 1:
            return "multi_worker"
        return "mirrored" if num_gpus else "one_device"
    if name == "tpu" and not tpu:
        raise ConfigError("--strategy=tpu needs --tpu: the TPU's name, or 'local' on a Cloud TPU VM.")
    return name


def make_strategy(name="auto", tpu=None, collective_timeout_s=0):
    """The tf.distribute strategy named ``name`` (see the module docstring). Raises ConfigError for an unknown
    name, a bad TF_CONFIG or an unreachable TPU."""
    tf = _tf()
    name = resolve_name(name, tpu, len(tf.config.list_physical_devices("GPU")))
    if name == "one_device":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return multi_worker_strategy(collective_timeout_s)
    return tpu_strategy(tpu)


# A worker whose heartbeats TensorFlow's coordination service misses for this long counts as lost, and the job
# ends. TensorFlow's default, 10 s, ended healthy jobs on this project's shared 2-core machine (both workers
# starved of CPU during their first step); 45 s still ends a job within 2 minutes of losing a worker.
HEARTBEAT_TIMEOUT_S = 45


def _configure_coordination(config, heartbeat_timeout_s):
    """Configures TensorFlow's coordination service as MultiWorkerMirroredStrategy would (leader, jobs), with
    heartbeat timeout ``heartbeat_timeout_s``; does nothing if it is configured already or TensorFlow's
    internals differ."""
    tf = _tf()
    try:
        # pylint: disable=import-outside-toplevel
        from tensorflow.core.protobuf import coordination_config_pb2
        from tensorflow.python.distribute import multi_worker_util
        from tensorflow.python.eager import context
    except ImportError:
        return
    if context.context().coordination_service is not None or config["task"]["type"] not in _CLUSTER_JOBS:
        return
    spec = multi_worker_util.normalize_cluster_spec(tf.train.ClusterSpec(config["cluster"]))
    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
            for job in _CLUSTER_JOBS if job in spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(spec),
        heartbeat_timeout_in_ms=int(heartbeat_timeout_s * 1000), coordinated_jobs=jobs)


def multi_worker_strategy(collective_timeout_s=0, environ=None, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S):
    """MultiWorkerMirroredStrategy over TF_CONFIG's cluster: NCCL all-reduce on GPUs, ring on CPUs; collectives
    time out after ``collective_timeout_s`` seconds (0: never; lost workers are found by heartbeats anyway,
    ``heartbeat_timeout_s``)."""
    tf = _tf()
    config = read_tf_config(environ)  # a bad TF_CONFIG is one line, not TensorFlow's traceback
    _configure_coordination(config, heartbeat_timeout_s)
    implementation = (tf.distribute.experimental.CommunicationImplementation.NCCL
                      if tf.config.list_physical_devices("GPU") else
                      tf.distribute.experimental.CommunicationImplementation.RING)
    if collective_timeout_s is not None and collective_timeout_s < 0:
        raise ConfigError(f"--collective_timeout_s must be >= 0 (0: no timeout), got {collective_timeout_s}.")
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=implementation, timeout_seconds=float(collective_timeout_s) if collective_timeout_s else None)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (ValueError, tf.errors.OpError) as e:
        raise ConfigError(f"cannot start the multi-worker cluster of {TF_CONFIG} ({_first_line(e)}).") from e


def tpu_strategy(tpu):
    """TPUStrategy on the Cloud TPU ``tpu`` ('local' on a TPU VM, else its name or grpc:// address): resolves it,
    connects to it and initialises it. Raises ConfigError in one line when it cannot be reached."""
    tf = _tf()
    address = re.fullmatch(r"grpc://([^:/]+):(\d+)/?", str(tpu))
    if address:  # TensorFlow would wait for an unreachable address forever
        try:
            socket.create_connection((address.group(1), int(address.group(2))), timeout=30).close()
        except OSError as e:
            raise ConfigError(f"cannot reach the TPU {tpu!r} ({e}): is the TPU up, and its port open to this "
                              f"machine? On a Cloud TPU VM use --tpu=local.") from e
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        if tpu != "local":  # a TPU VM's own chips need no remote connection
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except Exception as e:  # pylint: disable=broad-except  (any failure to reach it is the same user error)
        fix = ("Is this a Cloud TPU VM, with the tensorflow-tpu wheel and libtpu installed (README)?" if tpu == "local"
               else "On a Cloud TPU VM use --tpu=local; elsewhere give the TPU's name (same zone and project) or "
                    "grpc://host:8470.")
        raise ConfigError(f"cannot reach the TPU {tpu!r} ({type(e).__name__}: {_first_line(e)[:200]}). {fix}") from e


def is_multi_worker(strategy):
    """Whether ``strategy`` spans several processes (a MultiWorkerMirroredStrategy of several workers)."""
    return _multi_worker_task(strategy) is not None


def _multi_worker_task(strategy):
    """(task type, task index, {job: [addresses]}) of this process, for a multi-process strategy; else None."""
    tf = _tf()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if sum(len(cluster.get(job, [])) for job in _CLUSTER_JOBS) < 2:
        return None
    return resolver.task_type, resolver.task_id, cluster


def is_chief(strategy):
    """Whether this process writes the run's files (checkpoints, summaries, samples, exports, metrics): every
    single-process strategy's process; in a multi-worker job the chief (task "chief", else worker 0)."""
    return strategy is None or bool(strategy.extended.should_checkpoint)


def task_name(strategy):
    """'worker-1' (this process's TF_CONFIG task) in a multi-worker job, else 'chief'."""
    task = _multi_worker_task(strategy)
    return "chief" if task is None else f"{task[0]}-{task[1]}"


def worker_temp_dir(model_dir, strategy):
    """This process's own temporary folder in a multi-worker job (None otherwise): where a worker that is not the
    chief writes what a collective operation makes every worker write (its checkpoint copy, its export copy),
    deleted right after (TensorFlow's documented multi-worker pattern), and where every worker, the chief too,
    keeps the real-data statistics of the training-time metrics for this session (all workers must find the same
    cached statistics: their computation is collective). Inside model_dir, hidden, named by the task (several
    workers may share one model_dir); removed when the run ends."""
    if not is_multi_worker(strategy):
        return None
    from dvdgan_tf.io import files  # pylint: disable=import-outside-toplevel
    return files.join(model_dir, f".{task_name(strategy)}.tmp")


def sum_over_workers(strategy, values):
    """The sums of the float ``values`` over every replica of ``strategy`` (each replica contributes the values
    divided by its process's local replica count, so the result is their sum over processes). A collective op:
    every worker must call it at the same point."""
    tf = _tf()
    local = strategy.extended.worker_devices
    share = tf.constant([float(v) / len(local) for v in values], tf.float32)
    per_replica = strategy.experimental_distribute_values_from_function(lambda _: share)
    return [float(x) for x in strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy()]


def any_worker(strategy, flag):
    """True on every worker when ``flag`` is true on any of them (a collective op in a multi-worker job; else
    ``flag`` itself). The loop agrees on stopping with it: a signal to one worker stops all at the same step."""
    if not is_multi_worker(strategy):
        return bool(flag)
    return sum_over_workers(strategy, [1.0 if flag else 0.0])[0] > 0.5


def check_same_on_workers(strategy, value, what, fix):
    """Raises ConfigError on every worker when ``value`` (a number) differs between the workers of a
    multi-worker job (a collective op; nothing to do for one process)."""
    if not is_multi_worker(strategy):
        return
    count, total, squares = sum_over_workers(strategy, [1.0, value, float(value) ** 2])
    if abs(count * squares - total * total) > 1e-6 * max(1.0, total * total):
        raise ConfigError(f"the workers disagree on {what} (this one, {task_name(strategy)}: {value}; mean of all "
                          f"{count:.0f}: {total / count:g}): {fix}")


_TASK_IN_MESSAGE = re.compile(r"/job:(\w+)(?:/replica:\d+)?/task:(\d+)")


def lost_worker_error(strategy, error, last_checkpoint=None):
    """The WorkerLostError for a TensorFlow error raised by a collective op of a multi-worker job (a peer is
    unreachable or gone, the collectives were aborted, or one timed out), naming the lost worker (its TF_CONFIG
    task and address) where the error tells which; None for other errors or single-process strategies."""
    tf = _tf()
    task = _multi_worker_task(strategy)
    if task is None or not isinstance(error, (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                                              tf.errors.AbortedError, tf.errors.CancelledError,
                                              tf.errors.FailedPreconditionError, tf.errors.InternalError)):
        return None
    own_type, own_index, cluster = task
    message = describe_lost_worker(str(getattr(error, "message", None) or error), (own_type, own_index), cluster,
                                   timed_out=isinstance(error, tf.errors.DeadlineExceededError))
    if message is None:
        return None
    resume = f" (step {last_checkpoint})" if last_checkpoint else ""
    return WorkerLostError(f"{message} The job cannot go on: restart every worker with the same command to resume "
                           f"from the last checkpoint{resume}.")


_TELLING = re.compile(r"unhealthy|aborted by|heartbeat|connection|unavailable|timed out|deadline|socket|peer",
                      re.I)


def describe_lost_worker(text, own_task, cluster, timed_out=False):
    """The first sentence of WorkerLostError's message for the TensorFlow error ``text`` seen by ``own_task``
    (job, index) of ``cluster`` ({job: [addresses]}): the lost task named by job, index and address when the
    text names another task (e.g. "/job:worker/replica:0/task:1"), and TensorFlow's most telling line. None when
    the text is not about the cluster."""
    mentioned = [(job, int(index)) for job, index in _TASK_IN_MESSAGE.findall(text)]
    named = [task for task in mentioned if task != tuple(own_task)]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    telling = next((line for line in lines if _TELLING.search(line)), None)
    if not named and tuple(own_task) in mentioned and re.search("heartbeat", text, re.I):
        what = (f"the cluster lost this worker: TensorFlow's coordination service missed its heartbeats for "
                f"{HEARTBEAT_TIMEOUT_S} s (this host overloaded, or the network to the chief down)")
    elif timed_out:
        what = ("a collective operation timed out (--collective_timeout_s): a worker is stuck or gone" +
                (f", maybe {named[0][0]} {named[0][1]}" if named else ""))
    elif named:
        job, index = named[0]
        addresses = cluster.get(job, [])
        address = addresses[index] if index < len(addresses) else "not in TF_CONFIG"
        what = f"lost {job} {index} ({address}, task {{\"type\": \"{job}\", \"index\": {index}}} in {TF_CONFIG})"
    elif telling is None or not re.search(r"collective|heartbeat|peer|task", text, re.I):
        return None  # not about the cluster
    else:
        what = "lost a worker (TensorFlow did not say which)"
    said = f" TensorFlow: {telling[:200]}" if telling else ""
    return f"{what}; this is {own_task[0]} {own_task[1]}.{said}"


def preemption_handler(strategy, checkpoint_manager, on_saved):
    """tf.distribute.experimental.PreemptionCheckpointHandler where it does something in TensorFlow 2.21: a
    multi-worker or mirrored job on Google Cloud GPU VMs, where it watches GCE's maintenance notices
    (TERMINATE_ON_HOST_MAINTENANCE), has every worker save a checkpoint at the same step, and calls ``on_saved``
    (which stops the loop). On Cloud TPU VMs and CPU VMs TensorFlow's handler does nothing (it says so), and
    off Google Cloud it would only replace the SIGTERM handling the loop already has: None there.
    Call ``handler.save_checkpoint_if_preempted(checkpoint_number=step)`` after every step."""
    tf = _tf()
    if not tf.config.list_physical_devices("GPU") or not isinstance(
            strategy, (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)):
        return None  # GCE_GPU is the only platform it serves; no GPU: not worth the metadata-server lookup
    from tensorflow.python.distribute.failure_handling import failure_handling_util  # pylint: disable=import-outside-toplevel
    if failure_handling_util.detect_platform() != failure_handling_util.PlatformDevice.GCE_GPU:
        return None
    resolver = getattr(strategy, "cluster_resolver", None)
    return tf.distribute.experimental.PreemptionCheckpointHandler(
        resolver, checkpoint_manager, termination_config=tf.distribute.experimental.TerminationConfig(
            exit_fn=on_saved))
