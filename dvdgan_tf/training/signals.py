"""Stopping a run cleanly on SIGINT (Ctrl-C) or SIGTERM (schedulers, pre-emption).

The handler only records the signal; the loop checks it between steps and then writes a checkpoint. The handler
stays installed until that last checkpoint is written: a second Ctrl-C or SIGTERM while it is being written is
reported and otherwise ignored (the default handler would kill the save half-way). Install it as early as
possible (the binary does so before importing TensorFlow), so that a signal during start-up also stops the run
cleanly instead of raising KeyboardInterrupt somewhere in the set-up.

In a multi-worker job a signal may reach one worker only, yet all must stop after the same step (each step and
each checkpoint save is a collective operation). There the loop calls ``defer()``: a signal is then only
recorded in ``received``, and ``agree`` (called by every worker after every step with whether any worker
received one) sets ``signal`` on all of them at once.
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
        self.received = None  # a signal recorded but not yet acted on (after ``defer``)
        self.deferred = False

    def defer(self):
        """From now on a signal sets ``received``, and ``signal`` is set only by ``agree`` (a signal recorded
        before is moved to ``received``)."""
        self.deferred = True
        if self.signal is not None and self.received is None:
            self.received, self.signal = self.signal, None

    def agree(self, any_received):
        """Sets ``signal`` when ``any_received`` (some worker of the job received a signal); returns whether it
        is set."""
        if any_received and self.signal is None:
            self.signal = self.received or "a signal to another worker"
        return self.signal is not None

    def _handle(self, signum, _frame):
        name = signal.Signals(signum).name
        if self.deferred and self.received is None:
            self.received = name
            return
        if self.signal is None and not self.deferred:
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
