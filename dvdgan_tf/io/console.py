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


class filtered_stderr:  # pylint: disable=invalid-name  (used as a context manager, like open)
    """Within the block, what anything writes to file descriptor 2 (this process, native code and child
    processes that inherit it) passes through a pipe, where every match of the compiled regex ``noise`` (give
    it whole lines, newline included) is cut out; the rest reaches the real stderr as it comes, so progress bars
    keep moving. Text is filtered in pieces that end in a newline or a carriage return (a progress bar redraws
    its line after a carriage return, so another process's line may follow a bar in one piece)."""

    def __init__(self, noise):
        self.noise = noise
        self._saved = self._thread = None

    def __enter__(self):
        import os  # pylint: disable=import-outside-toplevel
        import threading  # pylint: disable=import-outside-toplevel
        sys.stderr.flush()
        self._saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(target=self._pump, args=(read_end,), name="stderr-filter", daemon=True)
        self._thread.start()
        return self

    def _pump(self, read_end):
        import os  # pylint: disable=import-outside-toplevel
        import re  # pylint: disable=import-outside-toplevel
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while True:
                chunk = pipe.read(65536)
                if chunk:
                    pending += chunk
                pieces = re.split(rb"(?<=[\r\n])", pending)
                pending = b"" if not chunk else pieces.pop()  # at the end, an unterminated piece goes out too
                kept = self.noise.sub("", b"".join(pieces).decode("utf-8", "replace"))
                if kept:
                    os.write(self._saved, kept.encode("utf-8"))
                if not chunk:
                    return

    def __exit__(self, *exc):
        import os  # pylint: disable=import-outside-toplevel
        sys.stderr.flush()
        os.dup2(self._saved, 2)  # closes the pipe's last write end held here; children may hold others
        self._thread.join(timeout=5.0)
        if not self._thread.is_alive():  # else a child still holds the pipe: the pump keeps writing there
            os.close(self._saved)
        return False
