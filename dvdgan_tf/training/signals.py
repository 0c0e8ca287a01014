"""Stopping a run cleanly on SIGINT (Ctrl-C) or SIGTERM (schedulers, pre-emption).

The handler only records the signal; the loop checks it between steps and then writes a checkpoint. The handler
stays installed until that last checkpoint is written: a second Ctrl-C or SIGTERM while it is being written is
reported and otherwise ignored (the default handler would kill the save half-way). Install it as early as
possible (the binary does so before importing TensorFlow), so that a signal during start-up also stops the run
cleanly instead of raising KeyboardInterrupt somewhere in the set-up.
"""
import signal
import sys

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Context manager: while entered, SIGINT/SIGTERM set ``self.signal`` (the first one's name) instead of
    stopping the process. Re-entering an already-entered request is a no-op (nested use by the binary and the
    library's ``train``)."""

    def __init__(self):
        self.signal = None
        self._previous = {}
        self._depth = 0
        self.saving = False

    def _handle(self, signum, _frame):
        name = signal.Signals(signum).name
        if self.signal is None:
            self.signal = name
            return
        what = "writing the final checkpoint" if self.saving else "stopping after the current step"
        print(f"\n{name} again: already {what}; please wait (kill -9 would lose the steps since the last "
              f"checkpoint).", file=sys.stderr, flush=True)

    def __enter__(self):
        if self._depth == 0:
            for sig in _SIGNALS:
                try:
                    self._previous[sig] = signal.signal(sig, self._handle)
                except ValueError:  # not the main thread: signals cannot be caught here
                    pass
        self._depth += 1
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
            self._previous = {}
