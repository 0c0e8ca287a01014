"""D_S and D_T: frame sampling, what each discriminator sees, projection conditioning and input errors."""
import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.nets.blocks import avgpool
from dvdgan_tf.nets.discriminators import SpatialDiscriminator, TemporalDiscriminator, sample_frame_indices

T, RES, CLASSES = 6, 16, 4


def tiny_ds(k=3):
    return SpatialDiscriminator(CLASSES, T, RES, ch=4, channel_multipliers=(1, 2), k=k)


def tiny_dt(**kwargs):
    return TemporalDiscriminator(CLASSES, T, RES, ch=4, channel_multipliers=(1, 2), **kwargs)


def video(seed=0, batch=2):
    return tf.random.uniform([batch, T, RES, RES, 3], -1, 1, seed=seed)


def test_frame_indices_distinct_sorted_reproducible():
    seed = tf.constant([1, 2])
    idx = sample_frame_indices(50, 12, 8, seed).numpy()
    assert idx.shape == (50, 8)
    assert all(len(set(row)) == 8 for row in idx)
    assert np.all(np.diff(idx, axis=1) > 0) and idx.min() >= 0 and idx.max() < 12
    np.testing.assert_array_equal(idx, sample_frame_indices(50, 12, 8, seed).numpy())
    assert not np.array_equal(idx, sample_frame_indices(50, 12, 8, tf.constant([1, 3])).numpy())


def test_frame_indices_are_uniform():
    idx = sample_frame_indices(4000, 12, 3, tf.constant([7, 7])).numpy()
    freq = np.bincount(idx.ravel(), minlength=12) / idx.size
    np.testing.assert_allclose(freq, 1 / 12, atol=0.01)


def test_ds_scores_exactly_the_k_sampled_frames():
    ds = tiny_ds(k=3)
    x, y, seed = video(), tf.constant([0, 3]), tf.constant([5, 6])
    score = ds(x, y, frame_seed=seed).numpy()
    idx = sample_frame_indices(2, T, 3, seed)
    per_frame = ds.frame_scores(tf.gather(x, idx, axis=1, batch_dims=1), y).numpy()
    assert per_frame.shape == (2, 3)
    np.testing.assert_allclose(score, per_frame.sum(axis=1), rtol=1e-5)
    # Frames not drawn do not matter; a drawn one does.
    unused = [t for t in range(T) if t not in idx.numpy()[0]][0]
    mask = np.zeros([2, T, 1, 1, 1], np.float32)
    mask[0, unused] = 1.0
    np.testing.assert_allclose(ds(x + 5.0 * mask, y, frame_seed=seed).numpy(), score, rtol=1e-5)
    mask[:] = 0.0
    mask[0, idx.numpy()[0, 0]] = 1.0
    assert not np.isclose(ds(x + 5.0 * mask, y, frame_seed=seed).numpy()[0], score[0])


def test_ds_without_seed_uses_its_seed_generator():
    a = tiny_ds()
    x, y = video(), tf.constant([0, 1])
    draws = [a.sample_frames(x)[1].numpy() for _ in range(4)]
    assert any(not np.array_equal(draws[0], d) for d in draws[1:])  # a fresh draw per call
    b = tiny_ds()
    np.testing.assert_array_equal(draws[0], b.sample_frames(x)[1].numpy())  # same seed, same sequence


def test_dt_sees_the_pooled_clip():
    dt = tiny_dt()
    x, y = video(), tf.constant([1, 2])
    score = dt(x, y).numpy()
    pooled = avgpool(x)
    np.testing.assert_allclose(score, dt.project(dt.features(pooled), y).numpy().sum(axis=1), rtol=1e-5)
    # A clip with the same 2x2 means gives the same score; D_T cannot see detail below its pooling.
    same_means = tf.repeat(tf.repeat(pooled, 2, axis=2), 2, axis=3)
    np.testing.assert_allclose(dt(same_means, y).numpy(), score, rtol=1e-4, atol=1e-4)


def test_dt_first_blocks_are_3d():
    dt = tiny_dt(num_3d_blocks=1)
    assert [b.conv1.rank for b in dt.layers_] == [3, 2]


def test_dt_sees_time_order_and_ds_does_not():
    x, y = video(batch=1), tf.constant([0])
    reversed_x = x[:, ::-1]
    dt, ds = tiny_dt(), tiny_ds(k=T)  # with k = T, D_S sees every frame
    assert not np.isclose(dt(x, y).numpy(), dt(reversed_x, y).numpy()).all()
    seed = tf.constant([0, 0])
    np.testing.assert_allclose(ds(x, y, frame_seed=seed).numpy(), ds(reversed_x, y, frame_seed=seed).numpy(),
                               rtol=1e-5)


def test_projection_uses_the_label():
    ds, x = tiny_ds(), video(batch=1)
    seed = tf.constant([1, 1])
    assert ds(x, tf.constant([0]), frame_seed=seed).numpy() != ds(x, tf.constant([1]), frame_seed=seed).numpy()


def test_k_larger_than_t_is_a_clear_error():
    with pytest.raises(ValueError, match=r"D_S.k=9 frames cannot be drawn .* from 6 frames"):
        tiny_ds(k=9)


@pytest.mark.parametrize("shape", [[2, T, 32, 32, 3], [2, T + 1, RES, RES, 3], [2, T, RES, RES, 1],
                                   [T, RES, RES, 3]])
@pytest.mark.parametrize("make", [tiny_ds, tiny_dt])
def test_wrong_video_shape_is_a_clear_error(make, shape):
    with pytest.raises(ValueError, match=r"expects videos shaped \[batch, 6, 16, 16, 3\]"):
        make()(tf.zeros(shape), tf.constant([0, 1]))


@pytest.mark.parametrize("make", [tiny_ds, tiny_dt])
def test_label_outside_class_range_is_a_clear_error(make):
    with pytest.raises(ValueError, match=r"outside the class range \[0, 4\)"):
        make()(video(), tf.constant([0, 4]))


def test_float_labels_are_rejected():
    with pytest.raises(ValueError, match="integer class indices"):
        tiny_ds()(video(), tf.constant([0.0, 1.0]))
