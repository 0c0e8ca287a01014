"""training/strategies.py without a cluster: the names and 'auto', TF_CONFIG checks, the lost-worker message,
unreachable TPUs as one line, and the deferred stop that multi-worker jobs agree on (signals.StopRequest)."""
import json
import os
import signal
import subprocess
import sys

import pytest
import tensorflow as tf

from dvdgan_tf.errors import ConfigError
from dvdgan_tf.training import strategies
from dvdgan_tf.training.signals import StopRequest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWO_WORKERS = {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, "task": {"type": "worker", "index": 1}}


def env(config):
    return {strategies.TF_CONFIG: config if isinstance(config, str) else json.dumps(config)}


@pytest.mark.parametrize("name,tpu,gpus,environ,expected", [
    ("auto", None, 0, {}, "one_device"),
    ("auto", None, 2, {}, "mirrored"),
    ("auto", None, 1, {}, "mirrored"),
    ("auto", "local", 2, env(TWO_WORKERS), "tpu"),          # a named TPU wins
    ("auto", None, 2, env(TWO_WORKERS), "multi_worker"),    # a cluster of 2 tasks
    ("auto", None, 0, env({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}),
     "one_device"),                                          # a 1-task cluster is no job of several processes
    ("default", None, 2, {}, "one_device"),                 # the old name
    ("mirrored", None, 0, {}, "mirrored"),
    ("multi_worker", None, 0, {}, "multi_worker"),          # (TF_CONFIG is checked when it is made)
    ("tpu", "my-tpu", 0, {}, "tpu"),
])
def test_resolve_name(name, tpu, gpus, environ, expected):
    assert strategies.resolve_name(name, tpu, gpus, environ) == expected


@pytest.mark.parametrize("name,tpu,words", [("tpu", None, "--tpu"), ("parameter_server", None, "unknown strategy")])
def test_resolve_name_errors_in_one_line(name, tpu, words):
    with pytest.raises(ConfigError, match=words) as error:
        strategies.resolve_name(name, tpu, 0, {})
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("config,words", [
    (None, "needs the environment variable TF_CONFIG"),
    ("{not json", "not valid JSON"),
    ({"task": {"type": "worker", "index": 0}}, 'no "cluster"'),
    ({"cluster": {"worker": ["10.0.0.1"]}, "task": {"type": "worker", "index": 0}}, "host:port"),
    ({"cluster": {"worker": ["a:1", "b:2"]}}, '"task"'),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "chief", "index": 0}}, '"task"'),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}, "task index 2"),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": "1"}}, "task index '1'"),
    ({"cluster": {"chief": ["a:1", "c:3"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}},
     "at most one chief"),
])
def test_bad_tf_config_is_one_line_config_error(config, words):
    environ = {} if config is None else env(config)
    with pytest.raises(ConfigError, match=words) as error:
        strategies.read_tf_config(environ)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match=words):  # before TensorFlow sees it
        strategies.multi_worker_strategy(environ=environ)


def test_good_tf_config_is_read():
    assert strategies.read_tf_config(env(TWO_WORKERS)) == TWO_WORKERS


def test_the_binary_reports_a_bad_tf_config_in_one_line():
    result = subprocess.run([sys.executable, "-m", "dvdgan_tf.cli.train", "--gin_file=gin/demo.gin",
                             "--model_dir=unused", "--strategy=multi_worker"], cwd=REPO, capture_output=True,
                            text=True, timeout=300, env={**os.environ, strategies.TF_CONFIG: '{"cluster": {}}'})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ['dvdgan-train: error: TF_CONFIG has no "cluster" with a "worker" (or "chief") list of '
                     'addresses; e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": '
                     '{"type": "worker", "index": 0}}\' (index 1 on host2).'], result.stderr
    assert not os.path.exists(os.path.join(REPO, "unused"))


# The two forms TensorFlow 2.21 gave in this project's runs (two processes on 127.0.0.1, one killed with -9): the
# survivor that leads the coordination service hears of the missing heartbeats, the other of the lost connection.
HEARTBEATS = """Graph execution error:

Detected at node CollectiveReduceV2 defined at (most recent call last):
Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks are unhealthy (stopped \
sending heartbeats):
/job:worker/replica:0/task:1
The tasks have crashed. Check the task logs for an earlier error."""
CONNECTION = """Graph execution error:

Collective ops is aborted by: recvmsg:Connection reset by peer
Additional GRPC error information from remote target /job:worker/replica:0/task:0 while calling \
/tensorflow.WorkerService/CompleteInstance:"""
CLUSTER = {"worker": ["127.0.0.1:4001", "127.0.0.1:4002"]}


def test_lost_worker_is_named_with_its_address():
    message = strategies.describe_lost_worker(HEARTBEATS, ("worker", 0), CLUSTER)
    assert message.startswith('lost worker 1 (127.0.0.1:4002, task {"type": "worker", "index": 1} in TF_CONFIG); '
                              'this is worker 0.')
    assert "stopped sending heartbeats" in message and "\n" not in message
    message = strategies.describe_lost_worker(CONNECTION, ("worker", 1), CLUSTER)
    assert message.startswith("lost worker 0 (127.0.0.1:4001,") and "Connection reset by peer" in message


def test_own_missed_heartbeats_are_named_as_such():
    text = ("Collective ops is aborted by: Unexpected heartbeat request from an already-in-error task: "
            "/job:worker/replica:0/task:0 with existing error: UNAVAILABLE: Task /job:worker/replica:0/task:0 "
            "heartbeat timeout")
    message = strategies.describe_lost_worker(text, ("worker", 0), CLUSTER)
    assert message.startswith("the cluster lost this worker: TensorFlow's coordination service missed its "
                              "heartbeats") and "this is worker 0." in message


def test_timeouts_and_unrelated_errors():
    message = strategies.describe_lost_worker("Collective ops timed out after 5 s", ("worker", 0), CLUSTER,
                                              timed_out=True)
    assert message.startswith("a collective operation timed out (--collective_timeout_s)")
    assert strategies.describe_lost_worker("OOM when allocating tensor", ("worker", 0), CLUSTER) is None
    # Single-process strategies: never a lost worker.
    assert strategies.lost_worker_error(tf.distribute.get_strategy(),
                                        tf.errors.UnavailableError(None, None, HEARTBEATS)) is None


def test_single_process_strategy_helpers():
    strategy = strategies.make_strategy("one_device")
    assert strategy is tf.distribute.get_strategy()
    assert strategies.is_chief(strategy) and not strategies.is_multi_worker(strategy)
    assert strategies.worker_temp_dir("runs/x", strategy) is None and strategies.task_name(strategy) == "chief"
    assert strategies.any_worker(strategy, True) and not strategies.any_worker(strategy, False)
    strategies.check_same_on_workers(strategy, 3, "the step", "fix it")  # nothing to compare with


def test_unreachable_tpu_is_one_line():
    with pytest.raises(ConfigError, match=r"cannot reach the TPU 'grpc://127.0.0.1:1'") as error:
        strategies.make_strategy("tpu", tpu="grpc://127.0.0.1:1")
    assert "\n" not in str(error.value)


def test_deferred_stop_waits_for_agreement():
    with StopRequest() as stop:
        stop.defer()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signal is None and stop.received == "SIGTERM"
        assert not stop.agree(False) and stop.signal is None  # not yet agreed: keep training
        assert stop.agree(True) and stop.signal == "SIGTERM"
    with StopRequest() as stop:
        stop.defer()
        assert stop.agree(True) and stop.signal == "a signal to another worker"  # another worker's signal
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)  # before defer (start-up): kept for the agreement
        stop.defer()
        assert stop.signal is None and stop.received == "SIGINT"
        assert stop.agree(False) is False and stop.agree(True) and stop.signal == "SIGINT"


def test_run_lock_on_a_remote_model_dir():
    """The chief's lock on a gs:// model_dir (ram:// stands in): written through tf.io.gfile, a second trainer
    is refused with the advice for remote locks, and the lock is gone after the run."""
    from dvdgan_tf.training.run_dir import RunLock
    model_dir = "ram://run-lock-test/run"
    with RunLock(model_dir):
        assert tf.io.gfile.exists(model_dir + "/lock")
        holder = json.loads(tf.io.gfile.GFile(model_dir + "/lock").read())
        assert holder["pid"] == os.getpid()
        with pytest.raises(ConfigError, match="in use by another dvdgan-train .* delete the lock file by hand"):
            RunLock(model_dir).acquire()
    assert not tf.io.gfile.exists(model_dir + "/lock")
