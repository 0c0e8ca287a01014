"""Worker processes of a preparation end with the process that started them: kill -9 of the parent leaves no
worker and no multiprocessing resource tracker behind (issue 8, item 8)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from data_video_fixtures import pattern_frames, write_video

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)

SCRIPT = """
import sys
sys.path[:0] = [{tests!r}, {repo!r}]
from data_video_fixtures import SlowSource
from dvdgan_tf.data import prepare
prepare.prepare(SlowSource({videos!r}, 1.0), {out!r}, prepare.Options(resolution=8, min_frames=4,
                videos_per_shard=1), workers=2, show_progress=False)
"""


def _children(pid):
    """Direct children of `pid` from /proc/<pid>/task/*/children (empty when it is gone)."""
    found = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                found |= {int(c) for c in f.read().split()}
        except FileNotFoundError:
            pass
    return found


def _descendants(pid):
    todo, found = [pid], set()
    while todo:
        for child in _children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid):
    """True while `pid` exists and is not a zombie (an exited process not yet reaped by its new parent)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_kill_9_of_the_parent_leaves_no_worker_or_resource_tracker(tmp_path):
    for i in range(12):  # 12 one-video shards, 1 s each: both workers stay busy for several seconds
        write_video(str(tmp_path / "videos" / f"class{i % 2}" / f"v{i}.mp4"), pattern_frames(6, 16, 16, i))
    out = tmp_path / "out"
    script = SCRIPT.format(tests=TESTS, repo=REPO, videos=str(tmp_path / "videos"), out=str(out))
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    descendants = set()
    try:
        deadline = time.time() + 180
        while not list(out.glob("*.tfrecord")):  # the workers are running (they import TensorFlow first)
            assert parent.poll() is None, parent.stderr.read().decode()
            assert time.time() < deadline, "no shard written within 180 s"
            time.sleep(0.2)
        descendants = _descendants(parent.pid)
        commands = {pid: _cmdline(pid) for pid in descendants}
        assert sum("resource_tracker" not in c for c in commands.values()) == 2, commands  # the two workers
        assert any("resource_tracker" in c for c in commands.values()), commands
        assert len(list(out.glob("*.tfrecord"))) < 12  # still busy when killed
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.time() + 5
        while any(_alive(pid) for pid in descendants) and time.time() < deadline:
            time.sleep(0.1)
        left = {pid: commands[pid] for pid in descendants if _alive(pid)}
        assert not left, f"still running 5 s after kill -9 of their parent: {left}"
    finally:  # whatever happened, leave no process of this test behind
        descendants |= _descendants(parent.pid)
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in descendants:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
