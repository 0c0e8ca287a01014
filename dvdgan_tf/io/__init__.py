"""Input/output shared by every layer: atomic file and folder writes through tf.io.gfile, the cache root,
video encoding, and the console (progress bars, log lines, quiet mode)."""
