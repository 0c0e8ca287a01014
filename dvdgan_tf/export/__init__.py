"""Shipping a generator: the self-contained SavedModel, loading it back and sampling from it."""
