"""The dvdgan-train binary: dry run output and exit codes, and clean errors without tracebacks."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_train(*args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "dvdgan_tf.cli.train", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_dry_run_prints_config_and_counts():
    result = run_train("--gin_file=gin/kinetics600_64px_12f.gin", "--gin_param=D_S.k = 4", "--dry_run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "D_S.k = 4" in lines
    for name in ("G", "D_S", "D_T"):
        assert any(line.startswith(f"{name}: ") and "parameters" in line for line in lines)


def test_unknown_gin_parameter_exits_cleanly_naming_it():
    result = run_train("--gin_file=gin/ucf101.gin", "--gin_param=G.widht = 3", "--dry_run")
    assert result.returncode == 2
    assert "doesn't have a parameter named 'widht'" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_gin_file_exits_cleanly():
    result = run_train("--gin_file=gin/ucf102.gin", "--dry_run")
    assert result.returncode == 2
    assert "'gin/ucf102.gin' not found" in result.stderr and "Traceback" not in result.stderr


def test_bad_network_setting_exits_cleanly():
    result = run_train("--gin_file=gin/ucf101.gin", "--gin_param=D_S.k = 17", "--dry_run")
    assert result.returncode == 2
    assert "D_S.k=17 frames cannot be drawn" in result.stderr and "Traceback" not in result.stderr
