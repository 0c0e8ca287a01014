"""Training: the loop (gin ``train``), one distributed GAN step, the losses, what a run shows at intervals, and
the run directory it owns (checkpoints, config, lock)."""
