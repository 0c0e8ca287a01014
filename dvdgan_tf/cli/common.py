"""What every dvdgan binary shares: quiet output unless --verbose, and user errors as one line.

A binary calls ``quiet_unless_verbose()`` at its top, before anything imports TensorFlow, and runs its body
through ``run_reporting_errors``. Quiet (the default), the user sees only the project's own lines and progress
bars:

- TensorFlow's native log lines: ``TF_CPP_MIN_LOG_LEVEL=3`` (read when TensorFlow loads; it hides, among
  others, ``failed call to cuInit`` on machines without a GPU). The lines its libraries log while they load,
  before absl logging is initialised (the oneDNN and CUDA-driver notices, twice), ignore that setting: they are
  filtered from stderr during ``import tensorflow`` (other lines pass through).
- Python logging below ERROR from anything but dvdgan_tf (TensorFlow's and Keras's INFO and WARNING lines, e.g.
  the saver's, or a several-thousand-character line about renamed signature inputs at export).
- Python warnings raised inside TensorFlow, Keras and TF-Hub.

``--verbose`` (or ``DVDGAN_VERBOSE=1``, which worker processes inherit) shows all of that, and prints the
traceback of a user error before its one-line message.

Imports no TensorFlow, so binaries can check their flags before the slow import.
"""
import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
import traceback
import warnings

from absl import flags

from dvdgan_tf.errors import DvdganError

VERBOSE_ENV = "DVDGAN_VERBOSE"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_bool("verbose", False, "Show TensorFlow's own INFO and WARNING output (C++ and Python) and the "
                  "traceback of errors, which are otherwise hidden (also: environment DVDGAN_VERBOSE=1).")

# Lines TensorFlow's native libraries print while they load: absl's notice, then INFO / WARNING / ERROR lines in
# absl's format, e.g. "I0000 00:00:1795699878.842838    4966 port.cc:153] oneDNN custom operations are on...".
_LOAD_NOISE = re.compile(r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                         r"|[IWE]\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] ")
# Where the Python warnings we hide come from (the module the warning is attributed to).
_NOISY_MODULES = r"(tensorflow|keras|tf_keras|tensorflow_hub|tensorflow_datasets|tensorboard)(\.|$)"


def verbose_requested(argv=None):
    """Whether ``--verbose`` (absl syntax: --verbose, --verbose=true, --noverbose) is in ``argv`` (default
    sys.argv), or DVDGAN_VERBOSE=1 is set. Usable before the flags are parsed."""
    argv = sys.argv if argv is None else argv
    verbose = os.environ.get(VERBOSE_ENV, "") not in ("", "0", "false", "False")
    for arg in argv[1:]:
        if arg == "--":
            break
        if not arg.startswith("-"):
            continue
        name, _, value = arg.lstrip("-").partition("=")
        if name == "verbose":
            verbose = value.lower() not in ("0", "false", "f", "no", "n") if value else True
        elif name == "noverbose" and not value:
            verbose = False
    return verbose


def quiet_unless_verbose(argv=None):
    """Call at the top of a binary, before TensorFlow is imported: sets up quiet or verbose output from argv.

    Returns whether output is verbose.
    """
    if verbose_requested(argv):
        return True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # an explicit setting of the user's wins
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
    warnings.filterwarnings("ignore", module=_NOISY_MODULES)
    return False


@contextlib.contextmanager
def native_stderr_filtered(noise=_LOAD_NOISE):
    """Sends file descriptor 2 to a temporary file for the block, then writes its lines that do not match
    ``noise`` to stderr: this filters what native code prints, which sys.stderr never sees."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not noise.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _FilteredLoader(importlib.abc.Loader):
    """Executes a module with ``native_stderr_filtered``; the module keeps its own loader."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with native_stderr_filtered():
            self.loader.exec_module(module)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """On the first ``import tensorflow``, wraps its loading in ``native_stderr_filtered``, then steps aside."""

    def __init__(self):
        self._looking = False

    def find_spec(self, fullname, path=None, target=None):  # pylint: disable=unused-argument
        if fullname != "tensorflow" or self._looking:
            return None
        self._looking = True
        try:
            spec = importlib.util.find_spec(fullname)  # the other finders' answer
        finally:
            self._looking = False
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _FilteredLoader(spec.loader)
        return spec


class _ProjectLinesAndErrors(logging.Filter):
    """Lets through records of dvdgan_tf's own code and, from anything else, ERROR and above."""

    def filter(self, record):
        return record.levelno >= logging.ERROR or record.pathname.startswith(_PACKAGE_DIR + os.sep)


_FILTER = _ProjectLinesAndErrors()


def quiet_python_logging():
    """Hides Python logging below ERROR except dvdgan_tf's own (call after absl parsed the flags: app.run sets up
    the handlers)."""
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    for logger in (logging.getLogger(), logging.getLogger("absl"), logging.getLogger("tensorflow")):
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


def is_verbose():
    """--verbose once flags are parsed; before, what sys.argv and the environment say."""
    try:
        return bool(flags.FLAGS.verbose) or verbose_requested([])
    except (flags.UnparsedFlagAccessError, AttributeError):
        return verbose_requested()


def user_message(error):
    """The error's message without the "In call to configurable ..." lines gin appends."""
    lines = str(error).splitlines()
    return "\n".join(line for line in lines if not line.strip().startswith("In call to configurable"))


def run_reporting_errors(binary, body, also=()):
    """Runs ``body()``; returns 0, or 2 after printing a DvdganError (or an error of a type in ``also``) as one
    line ``<binary>: error: <message>`` on stderr, after its traceback with --verbose. Quiet unless --verbose:
    Python logging below ERROR from outside dvdgan_tf is hidden while it runs."""
    verbose = is_verbose()
    if verbose:
        os.environ[VERBOSE_ENV] = "1"  # worker processes (spawned) are verbose too
    else:
        quiet_python_logging()
    from dvdgan_tf.io import console  # pylint: disable=import-outside-toplevel
    console.route_logging_around_progress_bars()
    try:
        body()
    except (DvdganError, *also) as e:  # pylint: disable=catching-non-exception
        if verbose:
            traceback.print_exc(file=sys.stderr)
        print(f"{binary}: error: {user_message(e)}", file=sys.stderr)
        return 2
    return 0


# The tf.distribute strategies the binaries offer (dvdgan-train, dvdgan-eval): the flags here, the list and the
# construction in dvdgan_tf/training/strategies.py (imported without TensorFlow).
STRATEGY_HELP = ("tf.distribute strategy: 'auto' (a TPU when --tpu is given, else the TF_CONFIG cluster when it "
                 "names several tasks, else all local GPUs, else the CPU), 'one_device' (alias 'default'), "
                 "'mirrored' (all local GPUs), 'multi_worker' (the cluster in the TF_CONFIG environment variable: "
                 "run the same command in every process) or 'tpu' (needs --tpu).")


def define_strategy_flag(help_text=STRATEGY_HELP, flag_values=flags.FLAGS):
    """Defines --strategy (default 'auto'; the choices of ``strategies.STRATEGIES`` and their aliases), --tpu and
    --collective_timeout_s (once per process: a second binary module imported beside the first shares them)."""
    from dvdgan_tf.training import strategies  # pylint: disable=import-outside-toplevel  (no TensorFlow)
    if "strategy" in flag_values:
        return
    flags.DEFINE_enum("strategy", "auto", list(strategies.STRATEGIES) + sorted(strategies.ALIASES), help_text,
                      flag_values=flag_values)
    flags.DEFINE_string("tpu", None, "Cloud TPU to run on (implies --strategy=tpu under 'auto'): 'local' on a "
                        "TPU VM, else the TPU's name or grpc://address.", flag_values=flag_values)
    flags.DEFINE_float("collective_timeout_s", 0, "multi_worker: end the job when a collective operation waits "
                       "longer than this many seconds (0: no limit; a killed or unreachable worker is detected "
                       "within seconds anyway). Keep it above the chief's longest pause (samples, exports, "
                       "class-accuracy classifiers).", flag_values=flag_values)


def make_strategy(name=None, flag_values=flags.FLAGS):
    """The tf.distribute strategy of --strategy (or ``name``), --tpu and --collective_timeout_s. Imports
    TensorFlow."""
    from dvdgan_tf.training import strategies  # pylint: disable=import-outside-toplevel
    return strategies.make_strategy(flag_values.strategy if name is None else name, tpu=flag_values.tpu,
                                    collective_timeout_s=flag_values.collective_timeout_s)
