"""A per-thread setting that holds for the duration of a ``with`` block (at trace time for traced functions).

Layers read such settings when they are built or traced: the per-channel statistics layout of old checkpoints
(``normalization.channel_statistics``), statistics handed to BatchNorm by an export
(``normalization.given_statistics``), spectral-norm vectors held still (``spectral_norm.frozen_vectors``).
"""
import contextlib


@contextlib.contextmanager
def scoped(local, name, value):
    """Sets ``local.<name>`` (a threading.local) to ``value`` within the block, then restores what it was."""
    missing = object()
    previous = getattr(local, name, missing)
    setattr(local, name, value)
    try:
        yield
    finally:
        if previous is missing:
            delattr(local, name)
        else:
            setattr(local, name, previous)
