"""Quiet by default: a binary's user sees the project's own lines; TensorFlow's native and Python log lines (and
the traceback of a user error) only with --verbose."""
import logging
import os
import re
import subprocess
import sys

import pytest

from dvdgan_tf.cli import common

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What TensorFlow prints on a CPU machine unless hidden (absl's pre-init notice, native INFO/ERROR lines such as
# oneDNN's banner and "failed call to cuInit", absl Python log lines "I1126 ...", Python warnings).
NOISE = re.compile(r"cuInit|oneDNN|WARNING|I0000|E0000|W0000|absl|^[IWE]\d{4} |Warning:")


def run_binary(name, *args):
    """Runs a binary as a user would: no TF_CPP_MIN_LOG_LEVEL of the test setup, no DVDGAN_VERBOSE."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", common.VERBOSE_ENV)}
    return subprocess.run([sys.executable, "-m", f"dvdgan_tf.cli.{name}", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def noise(result):
    return [line for line in (result.stdout + result.stderr).splitlines() if NOISE.search(line)]


def test_dry_run_prints_only_its_own_lines():
    result = run_binary("train", "--gin_file=gin/demo.gin", "--dry_run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^G: [\d,]+ parameters", result.stdout, re.M), result.stdout[-2000:]
    assert noise(result) == []


def test_user_error_is_one_line_and_its_traceback_only_with_verbose(tmp_path):
    # --out given, so that TensorFlow loads before the error (a missing run directory).
    args = (f"--model_dir={tmp_path / 'missing'}", f"--out={tmp_path / 'out'}")
    quiet = run_binary("export", *args)
    assert quiet.returncode == 2, quiet.stderr[-3000:]
    assert noise(quiet) == []
    assert "Traceback" not in quiet.stderr
    errors = [line for line in quiet.stderr.splitlines() if "error:" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("dvdgan-export: error: ") and "missing" in errors[0], errors

    verbose = run_binary("export", *args, "--verbose")
    assert verbose.returncode == 2
    assert "Traceback (most recent call last)" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1] == errors[0]


@pytest.mark.parametrize("argv, env, expected", [
    (["prog"], None, False),
    (["prog", "--verbose"], None, True),
    (["prog", "-verbose"], None, True),
    (["prog", "--verbose=true"], None, True),
    (["prog", "--verbose=false"], None, False),
    (["prog", "--verbose", "--noverbose"], None, False),
    (["prog", "--", "--verbose"], None, False),
    (["prog", "--verbose_other"], None, False),
    (["prog"], "1", True),
    (["prog", "--noverbose"], "1", False),
])
def test_verbose_is_read_from_argv_before_flags_are_parsed(argv, env, expected, monkeypatch):
    monkeypatch.delenv(common.VERBOSE_ENV, raising=False)
    if env is not None:
        monkeypatch.setenv(common.VERBOSE_ENV, env)
    assert common.verbose_requested(argv) is expected


def test_native_stderr_filter_drops_load_noise_and_keeps_other_lines(capfd):
    with common.native_stderr_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    b"I0000 00:00:1795699878.842838    4966 port.cc:153] oneDNN custom operations are on.\n"
                    b"E0000 00:00:1795699879.689741    4966 cuda_platform.cc:52] failed call to cuInit: (303)\n"
                    b"a line of something else\n")
    assert capfd.readouterr().err == "a line of something else\n"


def test_python_log_filter_keeps_project_lines_and_errors():
    keep = common._ProjectLinesAndErrors().filter  # pylint: disable=protected-access

    def record(level, path):
        return logging.LogRecord("absl", level, path, 1, "message", None, None)
    project_file = os.path.join(os.path.dirname(os.path.abspath(common.__file__)), "..", "data", "pipeline.py")
    project_file = os.path.normpath(project_file)
    tf_file = os.path.join(os.path.dirname(os.__file__), "site-packages", "tensorflow", "python", "x.py")
    assert keep(record(logging.WARNING, project_file))
    assert not keep(record(logging.INFO, tf_file))
    assert not keep(record(logging.WARNING, tf_file))
    assert keep(record(logging.ERROR, tf_file))


def test_log_lines_are_printed_above_a_progress_bar_not_glued_to_it(capsys):
    from dvdgan_tf.io import console
    handler = logging.StreamHandler(sys.stderr)  # a stderr handler as absl installs one (sys.stderr: capsys's)
    logging.getLogger().addHandler(handler)
    logger = logging.getLogger("test_cli_quiet")
    try:
        console.route_logging_around_progress_bars()
        with console.ProgressBar(2) as bar:
            bar.update(1)
            logger.warning("saved a checkpoint")
            bar.update(2)
    finally:
        logging.getLogger().removeHandler(handler)
    err = capsys.readouterr().err
    # tqdm clears the bar line (carriage return) before the log line, then redraws the bar below it.
    assert "\rsaved a checkpoint\n" in err, repr(err)
    assert err.index("saved a checkpoint") < err.rindex("2/2")


@pytest.mark.parametrize("name", ["train", "eval", "sample", "export", "export_i3d", "prepare_data"])
def test_every_binary_lists_verbose_in_its_help_without_loading_tensorflow(name):
    result = subprocess.run([sys.executable, "-c", f"import sys, runpy; sys.argv = ['x', '--help']\n"
                             f"try: runpy.run_module('dvdgan_tf.cli.{name}', run_name='__main__')\n"
                             f"except SystemExit: print('tensorflow' in sys.modules)"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert "--[no]verbose: Show TensorFlow's own INFO and WARNING output" in result.stdout, result.stderr[-2000:]
    assert result.stdout.strip().endswith("False")  # --help answered before TensorFlow was imported
