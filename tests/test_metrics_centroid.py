"""The centroid evidence of frame-conditional prediction (metrics/centroid.py)."""
import numpy as np
import pytest

from dvdgan_tf.data.synthetic import moving_shapes
from dvdgan_tf.metrics import centroid


def blank(frames=1, size=16):
    return -np.ones([frames, size, size, 3], np.float32)


def test_centroid_of_a_drawn_rectangle():
    frame = blank()[0]
    frame[2:6, 8:12, 1] = 1.0  # rows 2..5, columns 8..11 fully green: centre (4, 10) px = (4/16, 10/16)
    np.testing.assert_allclose(centroid.pixel_centroids(frame), [4 / 16, 10 / 16])


def test_faint_pixels_count_less_and_an_empty_frame_gives_the_centre():
    frame = blank()[0]
    frame[0:2, 0:2] = 1.0  # the object: centre (1, 1) px
    frame[14:16, 14:16] = -1.0 + 2 * 0.05  # brightness 0.05 < the 0.1 threshold: ignored
    np.testing.assert_allclose(centroid.pixel_centroids(frame), [1 / 16, 1 / 16])
    np.testing.assert_allclose(centroid.pixel_centroids(blank()), [[0.5, 0.5]])


def test_pixel_centroids_of_real_clips_match_the_renderer():
    videos, _, centres = next(iter(moving_shapes(16, 8, 32, 4, training=False, with_centres=True)))
    estimate = centroid.pixel_centroids(videos.numpy())
    error_px = np.linalg.norm(estimate - centres.numpy(), axis=-1) * 32
    # Symmetric shapes with edges sharper than a pixel at 32 px: the rasterised shape's centroid is off by less
    # than half a pixel.
    assert error_px.max() < 0.5 and error_px.mean() < 0.25


def test_one_class_moves_in_several_directions():
    """demo_fp's data (one class): the direction of a clip depends on the bounces before it, not on the class."""
    videos, labels, centres = next(iter(moving_shapes(16, 3, 32, 1, training=False, with_centres=True)))
    assert set(labels.numpy().tolist()) == {0}
    steps = np.sign(centres.numpy()[:, 1] - centres.numpy()[:, 0])
    assert len({tuple(s) for s in steps}) > 1  # shapes move in different directions
    np.testing.assert_allclose(np.abs(centres.numpy()[:, 1] - centres.numpy()[:, 0]).max(), 0.07 / 2 ** 0.5,
                               rtol=1e-4)  # at most the speed's diagonal component per axis


def test_prediction_errors_of_the_truth_and_of_the_baseline():
    videos, _, centres = next(iter(moving_shapes(8, 6, 32, 4, training=False, with_centres=True)))
    videos, centres = videos.numpy(), centres.numpy()
    truth = centroid.prediction_errors(videos, centres, 2)
    assert len(truth["per_frame"]) == 4 and max(truth["per_frame"]) < 0.5 and truth["ratio"] < 0.1
    # Frame 0 and 1 given; the truth's prediction error is ~0. The baseline repeats frame 1: its error at frame t
    # is the distance travelled since frame 1, |centre_t - centre_1| (renderer's positions, up to the estimate).
    travelled = np.linalg.norm(centres[:, 2:] - centres[:, 1:2], axis=-1).mean(0) * 32
    np.testing.assert_allclose(truth["baseline_per_frame"], travelled, atol=0.5)
    frozen = np.concatenate([videos[:, :2], np.repeat(videos[:, 1:2], 4, axis=1)], axis=1)
    still = centroid.prediction_errors(frozen, centres, 2)
    np.testing.assert_allclose(still["per_frame"], still["baseline_per_frame"])
    assert still["ratio"] == pytest.approx(1.0)
    assert "| 2 |" in centroid.format_table(still, 2)
