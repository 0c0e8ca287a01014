"""Generator: shapes, value ranges, layouts, truncated sampling and input errors (tiny widths)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.nets.generator import Generator, sample_latents


def tiny_generator(layout="v2", num_frames=3, resolution=16, **kwargs):
    return Generator(num_classes=5, num_frames=num_frames, resolution=resolution, ch=4,
                     channel_multipliers=(4, 2, 2), layout=layout, attention_resolutions=(8,), **kwargs)


@pytest.mark.parametrize("layout", ["v2", "v1"])
@pytest.mark.parametrize("training", [True, False])
def test_output_shape_and_range(layout, training):
    g = tiny_generator(layout)
    video = g(tf.random.normal([2, 120], seed=1), tf.constant([0, 4]), training=training)
    assert video.shape == (2, 3, 16, 16, 3)
    assert video.dtype == tf.float32
    assert np.all(np.abs(video.numpy()) <= 1.0)
    assert np.isfinite(video.numpy()).all()


@pytest.mark.parametrize("num_frames", [1, 5])
def test_any_frame_count(num_frames):
    g = tiny_generator(num_frames=num_frames)
    assert g(tf.zeros([2, 120]), tf.constant([1, 2])).shape == (2, num_frames, 16, 16, 3)


def test_layouts_differ_in_structure():
    v2, v1 = tiny_generator("v2"), tiny_generator("v1")
    v2(tf.zeros([1, 120]), tf.constant([0]))
    v1(tf.zeros([1, 120]), tf.constant([0]))
    assert len(v2.grus) == 2 and len(v1.grus) == 1  # v2: one ConvGRU per resolution group


def test_class_conditioning_changes_output():
    g = tiny_generator()
    z = tf.random.normal([1, 120], seed=3)
    a = g(z, tf.constant([0]), training=False)
    b = g(z, tf.constant([3]), training=False)
    assert not np.allclose(a.numpy(), b.numpy())


def test_truncated_latents_are_bounded_and_reproducible():
    seed = tf.constant([4, 2])
    z = sample_latents(64, 120, truncation=0.5, seed=seed)
    assert z.shape == (64, 120)
    assert np.abs(z.numpy()).max() <= 0.5
    np.testing.assert_array_equal(z.numpy(), sample_latents(64, 120, truncation=0.5, seed=seed).numpy())
    free = sample_latents(64, 120, seed=seed).numpy()
    assert np.abs(free).max() > 1.5  # untruncated draws do exceed the bound
    # 0 means no truncation, as on every command line (it used to be refused here only).
    np.testing.assert_array_equal(sample_latents(64, 120, truncation=0.0, seed=seed).numpy(), free)
    scaled = sample_latents(64, 120, truncation=0.5, seed=seed, convention="scaled").numpy()
    assert 0.5 < np.abs(scaled).max() <= 1.0  # 'scaled': 0.5 * truncnorm(-2, 2)
    with pytest.raises(ValueError, match="truncation must be a finite number >= 0"):
        sample_latents(2, 120, truncation=-1.0)


def test_wrong_z_size_is_a_clear_error():
    g = tiny_generator()
    with pytest.raises(ValueError, match=r"z shaped \[batch, 120\]"):
        g(tf.zeros([2, 100]), tf.constant([0, 1]))


def test_label_out_of_range_is_a_clear_error():
    g = tiny_generator()
    with pytest.raises(ValueError, match=r"outside the class range \[0, 5\).*Offending labels: \[5\]"):
        g(tf.zeros([2, 120]), tf.constant([0, 5]))


def test_label_out_of_range_in_graph_mode():
    g = tiny_generator()
    g(tf.zeros([1, 120]), tf.constant([0]))
    fn = tf.function(lambda z, y: g(z, y))
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside the class range"):
        fn(tf.zeros([1, 120]), tf.constant([-1]))


@pytest.mark.parametrize("kwargs, message", [
    (dict(resolution=48), "resolution must be 4 \\* 2\\^n"),
    (dict(layout="v3"), "G.layout must be one of"),
    (dict(resolution=32), "channel_multipliers needs 4 entries"),
])
def test_bad_construction_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_generator(**kwargs)


def test_mixed_precision_output_is_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        g = tiny_generator()
        video = g(tf.zeros([2, 120]), tf.constant([0, 1]), training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert video.dtype == tf.float32 and video.shape == (2, 3, 16, 16, 3)
    assert all(v.dtype == "float32" for v in g.variables)
