"""Per-resolution architecture tables: how many resolution stages a network has and its channel widths.

The paper leaves base widths and per-stage multipliers open; these BigGAN-like defaults are ours (see the
README's "Differences from the paper"). Every entry can be overridden from gin (``G.channel_multipliers``...).
"""
import math

# Generator: multipliers of ch at 4x4 and after each doubling of the resolution (n + 1 entries).
G_MULTIPLIERS = {64: (8, 8, 4, 2, 1), 128: (8, 8, 8, 4, 2, 1), 256: (8, 8, 8, 4, 2, 1, 1)}
# Discriminators: output multiplier of ch of each 2x2-downsampling block from full resolution to 4x4 (n entries).
D_MULTIPLIERS = {64: (1, 2, 4, 8), 128: (1, 2, 4, 8, 16), 256: (1, 2, 4, 8, 16, 16)}


def num_doublings(resolution):
    """n such that resolution = 4 * 2^n (n >= 1); raises ValueError for any other resolution."""
    n = int(round(math.log2(resolution / 4))) if resolution >= 8 else 0
    if n < 1 or 4 * 2 ** n != resolution:
        raise ValueError(f"resolution must be 4 * 2^n with n >= 1 (8, 16, 32, 64, 128, 256, ...), "
                         f"got {resolution}. Set RESOLUTION in the gin config.")
    return n


def resolve_multipliers(given, table, resolution, length, network):
    """``given`` (if set) or the table's default for ``resolution``, checked to have ``length`` entries."""
    mults = tuple(given) if given else table.get(resolution)
    if mults is None or len(mults) != length:
        raise ValueError(f"{network}.channel_multipliers needs {length} entries at resolution {resolution}, "
                         f"got {mults}. Set {network}.channel_multipliers in the gin config.")
    return mults
