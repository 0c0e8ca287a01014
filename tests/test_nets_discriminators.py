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
    x = video()
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


# BigGAN-PyTorch D_arch, written out: (output multiplier of ch, downsamples?) per block from full resolution.
BIGGAN_D = {
    64: [(1, True), (2, True), (4, True), (8, True), (16, False)],
    128: [(1, True), (2, True), (4, True), (8, True), (16, True), (16, False)],
    256: [(1, True), (2, True), (4, True), (8, True), (8, True), (16, True), (16, False)],
}


def _block_outputs(d, x):
    """Runs D's blocks one by one: [(channels, frames, height) of each block's output]."""
    shapes = []
    for block in d.layers_:
        x = block(x)
        shapes.append((x.shape[-1], x.shape[1], x.shape[2]))
    return shapes


@pytest.mark.parametrize("resolution", [64, 128, 256])
def test_default_blocks_follow_biggans_d_table(resolution):
    """D_S: widths and downsampling of BigGAN's D, ending with a non-downsampling block at 4x4. D_T: the same
    blocks on its 2x2-pooled input (so ending at 2x2), the first two 3-D."""
    ds = SpatialDiscriminator(CLASSES, 2, resolution, ch=1, k=1)
    dt = TemporalDiscriminator(CLASSES, 2, resolution, ch=1)
    x = tf.zeros([1, 2, resolution, resolution, 3])
    expected, res = [], resolution
    for m, down in BIGGAN_D[resolution]:
        res //= 2 if down else 1
        expected.append((m, 2, res))
    assert expected[-1][2] == expected[-2][2] == 4
    assert _block_outputs(ds, x) == expected
    assert _block_outputs(dt, avgpool(x)) == [(c, t, r // 2) for c, t, r in expected]
    assert [b.conv1.rank for b in dt.layers_] == [3, 3] + [2] * (len(expected) - 2)
    assert ds.embed.dim == dt.embed.dim == BIGGAN_D[resolution][-1][0]


def test_earlier_tables_stay_reachable():
    """table='dvdgan_v0': the tables before BigGAN's (one downsampling block per halving, no final block)."""
    ds = SpatialDiscriminator(CLASSES, 2, 256, ch=1, k=1, table="dvdgan_v0")
    shapes = _block_outputs(ds, tf.zeros([1, 1, 256, 256, 3]))
    assert shapes == [(1, 1, 128), (2, 1, 64), (4, 1, 32), (8, 1, 16), (16, 1, 8), (16, 1, 4)]


def test_explicit_multipliers_may_add_a_final_block():
    """n entries: n downsampling blocks; n + 1: the last one keeps the resolution (16 px: n = 2)."""
    plain = tiny_ds()
    final = SpatialDiscriminator(CLASSES, T, RES, ch=4, channel_multipliers=(1, 2, 2), k=3)
    x = tf.zeros([1, 1, RES, RES, 3])
    assert _block_outputs(plain, x) == [(4, 1, 8), (8, 1, 4)]
    assert _block_outputs(final, x) == [(4, 1, 8), (8, 1, 4), (8, 1, 4)]
    assert final.layers_[-1].skip is None  # same width, no downsampling: identity skip, as BigGAN


@pytest.mark.parametrize("kwargs,message", [
    (dict(channel_multipliers=(1,)), r"D_S.channel_multipliers needs 2 entries .* or 3 .* got \(1,\)"),
    (dict(channel_multipliers=(1, 2, 4, 8)), r"D_S.channel_multipliers needs 2 entries"),
    (dict(table="biggan_deep"), r"D_S.table must be one of \['biggan', 'dvdgan_v0'\], got 'biggan_deep'"),
])
def test_bad_tables_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SpatialDiscriminator(CLASSES, T, RES, ch=4, k=3, **kwargs)


def test_resolution_without_a_table_entry_asks_for_multipliers():
    with pytest.raises(ValueError, match=r"at resolution 32, got None. Set D_T.channel_multipliers"):
        TemporalDiscriminator(CLASSES, T, 32, ch=4)


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
