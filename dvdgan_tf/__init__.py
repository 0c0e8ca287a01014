"""dvdgan_tf: DVD-GAN (Clark, Donahue, Simonyan 2019) in TensorFlow 2 / Keras 3."""
__version__ = "0.1.0"
