"""Making layers held in Python lists visible to tf.train.Checkpoint.

Keras 3 tracks layers kept in lists for ``weights`` and saving in its own format, but on the TensorFlow backend
those lists are not tf.train.Checkpoint dependencies: a checkpoint of a model that keeps its blocks in a list
silently misses their variables. Every network here that keeps sub-layers in a list also registers each of them
as a named attribute with ``track``.
"""


def track(parent, layer):
    """Registers ``layer`` as the attribute ``layer.name`` of ``parent`` (a checkpoint dependency); returns it.

    Raises ValueError if ``parent`` already has a different attribute of that name.
    """
    existing = getattr(parent, layer.name, None)
    if existing is not None and existing is not layer:
        raise ValueError(f"{type(parent).__name__} already has an attribute {layer.name!r}: give the layer a "
                         f"unique name.")
    setattr(parent, layer.name, layer)
    return layer
