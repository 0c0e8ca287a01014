"""Per-resolution architecture tables: how many resolution stages a network has and its channel widths.

The paper leaves G's base widths and per-stage multipliers open; its BigGAN-like defaults are ours. D_S is
"almost identical to BigGAN's D", so the discriminators default to BigGAN's D tables (see the README's
"Differences from the paper"). Every entry can be overridden from gin (``G.channel_multipliers``,
``D_S.table``, ``D_S.channel_multipliers``...).
"""
import math

# Generator: multipliers of ch at 4x4 and after each doubling of the resolution (n + 1 entries).
G_MULTIPLIERS = {64: (8, 8, 4, 2, 1), 128: (8, 8, 8, 4, 2, 1), 256: (8, 8, 8, 4, 2, 1, 1)}
# Discriminators: output multiplier of ch of each residual block from full resolution down. A table entry has
# n entries (n 2x2-downsampling blocks, full resolution to 4x4) or n + 1 (then the last block does not
# downsample: BigGAN's final block at 4x4).
# 'biggan' (the default): BigGAN's D tables (BigGAN-PyTorch ``D_arch``), which DVD-GAN's D_S is "almost
# identical to". 'dvdgan_v0': this project's tables before issue 9 (narrower, no final block).
D_TABLES = {
    "biggan": {64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16), 256: (1, 2, 4, 8, 8, 16, 16)},
    "dvdgan_v0": {64: (1, 2, 4, 8), 128: (1, 2, 4, 8, 16), 256: (1, 2, 4, 8, 16, 16)},
}


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


def resolve_d_blocks(given, table, resolution, network):
    """The discriminator's blocks as (multiplier, downsamples) pairs, from full resolution down.

    given: explicit multipliers (``<network>.channel_multipliers``) or None for ``D_TABLES[table]``. n entries
    (resolution = 4 * 2^n) are n downsampling blocks; n + 1 entries end with a block that does not downsample.
    Raises ValueError (naming the gin settings) for an unknown table or a wrong number of entries.
    """
    n = num_doublings(resolution)
    if table not in D_TABLES:
        raise ValueError(f"{network}.table must be one of {sorted(D_TABLES)}, got {table!r}.")
    mults = tuple(given) if given else D_TABLES[table].get(resolution)
    if mults is None or len(mults) not in (n, n + 1):
        raise ValueError(f"{network}.channel_multipliers needs {n} entries (one per 2x2-downsampling block) or "
                         f"{n + 1} (the last a final block that does not downsample, as BigGAN) at resolution "
                         f"{resolution}, got {mults}. Set {network}.channel_multipliers in the gin config.")
    return tuple((m, i < n) for i, m in enumerate(mults))
