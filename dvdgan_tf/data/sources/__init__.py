"""Where raw videos come from: UCF-101, Kinetics-600, BAIR and TFDS sources, and what they share."""
