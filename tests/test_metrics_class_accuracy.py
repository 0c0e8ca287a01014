"""The demo's learning checks: grey-scale clips for the colour-blind classifier, the first-frame brightness
ratio, and the class accuracy of samples."""
import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.data.synthetic import moving_shapes
from dvdgan_tf.metrics import class_accuracy


def test_grayscale_is_bt601_luma_in_every_channel_and_removes_hue():
    rng = np.random.default_rng(0)
    videos = rng.uniform(-1, 1, (2, 3, 4, 5, 3)).astype(np.float32)
    grey = class_accuracy.grayscale(videos).numpy()
    luma = 0.299 * videos[..., 0] + 0.587 * videos[..., 1] + 0.114 * videos[..., 2]
    for c in range(3):
        np.testing.assert_allclose(grey[..., c], luma, rtol=1e-6, atol=1e-6)
    # Two colours of equal luma (a red and a green shape of the same brightness) become the same grey: the
    # colour-blind classifier cannot tell them apart.
    red, green = np.array([0.587, 0.0, 0.0], np.float32), np.array([0.0, 0.299, 0.0], np.float32)
    a = class_accuracy.grayscale(np.broadcast_to(red, (1, 2, 2, 2, 3))).numpy()
    b = class_accuracy.grayscale(np.broadcast_to(green, (1, 2, 2, 2, 3))).numpy()
    np.testing.assert_allclose(a, b, atol=1e-7)


def test_first_frame_ratio():
    videos = np.full((2, 4, 3, 3, 3), 0.6, np.float32)  # brightness (0.6 + 1) / 2 = 0.8 everywhere
    assert class_accuracy.first_frame_ratio(videos) == pytest.approx(1.0)
    videos[:, 0] = -0.2  # brightness 0.4: half of the others'
    assert class_accuracy.first_frame_ratio(videos) == pytest.approx(0.5)


def test_real_moving_shapes_have_first_frames_as_bright_as_the_rest():
    ratio = class_accuracy.real_first_frame_ratio(moving_shapes, 8, 32, 4, num_clips=32)
    assert ratio == pytest.approx(1.0, abs=0.05)


def test_accuracy_on_counts_the_clips_assigned_to_their_label():
    def classifier(videos, training=False):  # class = the brightest channel of the clip
        return tf.reduce_mean(tf.convert_to_tensor(videos), axis=[1, 2, 3])

    videos = np.zeros((4, 2, 2, 2, 3), np.float32)
    for i, channel in enumerate([0, 1, 2, 0]):
        videos[i, ..., channel] = 1.0
    assert class_accuracy.accuracy_on(classifier, videos, np.array([0, 1, 2, 2])) == 0.75
    # In grey every channel is equal: argmax picks channel 0 for all, so only the labels 0 are right.
    assert class_accuracy.accuracy_on(classifier, videos, np.array([0, 1, 2, 0]), colour=False) == 0.5
