"""A terminal progress bar with ETA for long jobs (training, evaluation, preparation), on stderr."""
import sys

from tqdm import tqdm


class ProgressBar:
    """Context manager around tqdm: ``update(position, values)`` moves to an absolute position and shows values.

    Args:
      total: the position at which the job is done. initial: the position it starts (or resumes) at.
      enabled: False shows nothing (e.g. in tests or when stderr is a log file and the caller prefers so).
      unit: what one position is ('step', 'clip', ...).
    """

    def __init__(self, total, initial=0, enabled=True, unit="step", description=None):
        self._bar = tqdm(total=total, initial=initial, disable=not enabled, unit=unit, desc=description,
                         file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

    def update(self, position, values=None):
        self._bar.update(position - self._bar.n)
        if values:
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._bar.close()


def log(message):
    """Prints a line on stderr without breaking an active progress bar."""
    tqdm.write(message, file=sys.stderr)


class _AroundProgressBars:
    """A text stream for logging handlers: each line goes through ``log``, so it does not break a progress bar."""

    def write(self, text):
        for line in text.splitlines():
            if line.strip():
                log(line)

    def flush(self):
        sys.stderr.flush()

    def close(self):
        """stderr stays open."""


def route_logging_around_progress_bars():
    """Makes the handlers that write Python log lines (absl's, and any plain stderr handler of the root logger)
    print them above an active progress bar instead of gluing them to it. Called by the binaries."""
    import logging  # pylint: disable=import-outside-toplevel
    for handler in logging.getLogger().handlers:
        target = getattr(handler, "python_handler", handler)  # absl's ABSLHandler wraps a PythonHandler
        if isinstance(target, logging.StreamHandler) and getattr(target, "stream", None) in (sys.stderr,
                                                                                             sys.__stderr__):
            target.stream = _AroundProgressBars()
