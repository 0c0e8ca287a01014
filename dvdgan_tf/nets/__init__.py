"""The networks: layers (spectral norm, per-frame cBN, ConvGRU, attention, residual blocks), the generator G,
the discriminators D_S and D_T, and building all three from gin."""
