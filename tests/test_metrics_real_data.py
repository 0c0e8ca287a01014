"""Real-data sources of dvdgan-eval: an .npz of uint8 videos, or the dataset function a gin config binds."""
import numpy as np
import pytest

from dvdgan_tf.errors import ConfigError, DataError
from dvdgan_tf.metrics import real_data


def test_npz_batches(tmp_path):
    videos = np.random.default_rng(0).integers(0, 256, (5, 9, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "real.npz", videos=videos, other=np.zeros(2))
    batches, key = real_data.npz_batches(str(tmp_path / "real.npz"), batch_size=2)
    np.testing.assert_array_equal(np.concatenate(list(batches)), videos)
    assert key.startswith("npz:") and "real.npz:videos:" in key
    np.savez(tmp_path / "two.npz", a=videos, b=videos)
    with pytest.raises(DataError, match="name the one with the videos"):
        real_data.npz_batches(str(tmp_path / "two.npz"))
    np.savez(tmp_path / "flat.npz", videos=np.zeros((5, 8, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"\[N, T, H, W, 3\]"):
        real_data.npz_batches(str(tmp_path / "flat.npz"))
    with pytest.raises(DataError, match="does not exist"):
        real_data.npz_batches(str(tmp_path / "none.npz"))


def test_gin_dataset_function_is_called_with_the_generator_shape():
    make, key = real_data.gin_source(["gin/demo.gin"], [], batch_size=2, training=True, seed=0)
    video, label = next(iter(make(num_frames=9, resolution=16, num_classes=4)))
    assert video.shape == (2, 9, 16, 16, 3) and label.shape == (2,)
    assert -1.0 <= float(np.min(video)) and float(np.max(video)) <= 1.0
    assert key.startswith("gin:demo.gin:")
    assert real_data.gin_source(["gin/demo.gin"], [], 2, training=False, seed=0)[1] != key
    assert real_data.gin_source(["gin/demo.gin"], ["moving_shapes.eval_examples = 8"], 2, seed=0)[1] != key
    with pytest.raises(ConfigError, match="binds no train.dataset_fn"):
        real_data.gin_source(["gin/base.gin"], ["NUM_CLASSES = 3", "NUM_FRAMES = 9", "RESOLUTION = 16"], 2)
