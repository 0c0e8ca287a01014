"""gin configuration: locating config files and parsing them with messages that name what is wrong."""
import contextlib
import importlib.resources
import logging
import os
import tokenize

import gin

# Importing these registers their configurables (G, D_S, D_T, train, datasets) before any file is parsed.
import dvdgan_tf.data.pipeline  # noqa: F401  pylint: disable=unused-import
import dvdgan_tf.data.synthetic  # noqa: F401  pylint: disable=unused-import
import dvdgan_tf.nets.networks  # noqa: F401  pylint: disable=unused-import
import dvdgan_tf.training.loop  # noqa: F401  pylint: disable=unused-import
from dvdgan_tf.errors import ConfigError

REPO_GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gin")


def shipped_gin_dir():
    """The folder of the shipped configs: ``dvdgan_tf/gin/`` in an installed package (setup.py copies the
    repository's ``gin/`` there), else the repository's ``gin/`` (a source checkout or an editable install).
    None if neither exists."""
    installed = importlib.resources.files("dvdgan_tf").joinpath("gin")
    for candidate in (installed, REPO_GIN_DIR):
        if isinstance(candidate, (str, os.PathLike)) and os.path.isdir(candidate):
            return os.fspath(candidate)
    return None


def resolve_gin_file(path):
    """Returns an existing path for ``path``: as given, or by its basename among the shipped configs."""
    gin_dir = shipped_gin_dir()
    candidates = [path] + ([os.path.join(gin_dir, os.path.basename(path))] if gin_dir else [])
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    shipped = sorted(f for f in os.listdir(gin_dir) if f.endswith(".gin")) if gin_dir else []
    raise ConfigError(f"gin file {path!r} not found. Shipped configs: {', '.join(shipped) or 'none'}.")


def parse_config(gin_files, gin_params=()):
    """Clears gin and parses ``gin_files`` (in order) then the ``gin_params`` bindings.

    Raises ConfigError naming the file or binding at fault (unknown configurable or parameter, syntax).
    """
    if not gin_files:
        raise ConfigError("no gin file given: pass --gin_file=gin/<experiment>.gin (see the gin/ folder).")
    files = [resolve_gin_file(f) for f in gin_files]
    gin.clear_config()
    # `include 'base.gin'` resolves against the working directory, then beside the given files, then among the
    # shipped configs. gin.clear_config() keeps the search paths of earlier calls: start again from gin's default
    # [''] so that an earlier call's folders cannot decide which base.gin this one includes.
    if isinstance(getattr(gin.config, "_LOCATION_PREFIXES", None), list):
        gin.config._LOCATION_PREFIXES[:] = [""]  # pylint: disable=protected-access
    for directory in dict.fromkeys([os.path.dirname(os.path.abspath(f)) for f in files] + [shipped_gin_dir()]):
        if directory:
            gin.add_config_file_search_path(directory)
    for f in files:
        _parse(lambda: gin.parse_config_file(f), f"gin file {f}")
    for binding in gin_params:
        _parse(lambda: gin.parse_config(binding), f"--gin_param={binding!r}")
    return files


@contextlib.contextmanager
def _quiet_gin_path_probes():
    """gin logs every search-path prefix it probes for an ``include`` (an ERROR where the file is not found);
    hide those probes."""
    probe_filter = lambda record: not record.pathname.endswith(os.path.join("gin", "resource_reader.py"))
    root = logging.getLogger()
    root.addFilter(probe_filter)
    try:
        yield
    finally:
        root.removeFilter(probe_filter)


def _parse(parse, where):
    try:
        with _quiet_gin_path_probes():
            parse()
    except tokenize.TokenError as e:  # the text ends inside a bracket or a triple-quoted string
        what, (line, _) = e.args if len(e.args) == 2 else (str(e), (None, None))
        if "statement" in what:
            what = "a bracket is not closed before the end"
        elif "string" in what:
            what = f"the string opened at line {line} is not closed"
        raise ConfigError(f"bad configuration in {where}: gin syntax error: {what}.") from e
    except (ValueError, KeyError, SyntaxError, IOError) as e:
        message = (str(e).strip().splitlines() or [type(e).__name__])[0].rstrip(".")
        raise ConfigError(f"bad configuration in {where}: {message}. gin/base.gin lists every configurable "
                          f"parameter with its default.") from e
