"""Video datasets: the embedded synthetic data, prepared real data, and their tf.data pipelines."""
