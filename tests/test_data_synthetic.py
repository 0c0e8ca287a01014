"""The embedded moving-shapes dataset: shapes, ranges, determinism, sharding and class-specific content."""
import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.data import synthetic


def first_batch(**kwargs):
    args = dict(batch_size=8, num_frames=6, resolution=24, num_classes=4, training=True, seed=0)
    args.update(kwargs)
    return next(iter(synthetic.moving_shapes(**args)))


def test_batch_shapes_dtypes_and_range():
    video, label = first_batch()
    assert video.shape == (8, 6, 24, 24, 3) and video.dtype == tf.float32
    assert label.shape == (8,) and label.dtype == tf.int32
    assert video.numpy().min() >= -1.0 and video.numpy().max() <= 1.0
    assert set(label.numpy()) <= set(range(4))


@pytest.mark.parametrize("frames, resolution", [(1, 8), (16, 64), (3, 128)])
def test_any_resolution_and_frame_count(frames, resolution):
    video, _ = first_batch(batch_size=2, num_frames=frames, resolution=resolution)
    assert video.shape == (2, frames, resolution, resolution, 3)


def test_deterministic_under_seed_and_different_across_seeds():
    a, la = first_batch(seed=3)
    b, lb = first_batch(seed=3)
    c, _ = first_batch(seed=4)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(la.numpy(), lb.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())


def test_hosts_get_disjoint_examples():
    context = lambda i: tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i,
                                                   num_replicas_in_sync=2)
    all_, _ = first_batch(batch_size=4)
    host0, _ = first_batch(batch_size=2, input_context=context(0))
    host1, _ = first_batch(batch_size=2, input_context=context(1))
    # 2 hosts of one replica each, global batch 4: host k reads the k-th block of 2 (data.sharding)
    np.testing.assert_array_equal(host0.numpy(), all_.numpy()[:2])
    np.testing.assert_array_equal(host1.numpy(), all_.numpy()[2:])


def test_eval_split_is_finite_and_disjoint_from_training():
    ds = synthetic.moving_shapes(4, 4, 16, 3, training=False, seed=0, eval_examples=10)
    batches = list(ds)
    assert len(batches) == 2  # 10 examples, batches of 4, remainder dropped
    train_video, _ = first_batch(batch_size=4, num_frames=4, resolution=16, num_classes=3)
    assert not np.array_equal(batches[0][0].numpy(), train_video.numpy())


def test_class_fixes_colour_shape_and_motion():
    """Two clips of the same class share colour, area and motion; clips of other classes do not."""
    res, frames = 48, 6
    def clip(label, start):
        return synthetic.render_clip(tf.constant(label), tf.constant(start, tf.float32), 1.0, frames, res,
                                     4).numpy()
    def centroid(frame):
        mask = frame.max(axis=-1) > 0
        ys, xs = np.nonzero(mask)
        return np.array([ys.mean(), xs.mean()])
    def summary(video):
        lit = video[0].max(axis=-1) > 0
        pixels = video[0].reshape(-1, 3)
        colour = pixels[np.argmax(pixels.sum(axis=-1))]  # a fully covered pixel, not an anti-aliased edge
        motion = centroid(video[1]) - centroid(video[0])
        return colour, lit.sum(), motion
    c0a, area0a, m0a = summary(clip(0, [0.5, 0.5]))
    c0b, area0b, m0b = summary(clip(0, [0.4, 0.6]))
    np.testing.assert_allclose(c0a, c0b, atol=1e-3)
    assert abs(area0a - area0b) <= 0.05 * area0a
    np.testing.assert_allclose(m0a, m0b, atol=0.3)
    for other in (1, 2, 3):
        c, area, m = summary(clip(other, [0.5, 0.5]))
        assert np.abs(c - c0a).max() > 0.2  # another colour
        assert np.abs(m - m0a).max() > 1.0  # another direction
    areas = [summary(clip(k, [0.5, 0.5]))[1] for k in range(4)]
    assert len(set(areas)) == 4  # disc, square, diamond and plus differ in area at equal size


def _stream(examples, start_example=0, pipelines=1, pipeline_id=0, seed=0):
    """The first `examples` training examples (batch 1) of one input pipeline, as arrays."""
    context = tf.distribute.InputContext(pipelines, pipeline_id, pipelines) if pipelines > 1 else None
    ds = synthetic.moving_shapes(1, 3, 8, 5, training=True, seed=seed, input_context=context,
                                 start_example=start_example).take(examples)
    videos, labels = zip(*[(v.numpy()[0], l.numpy()[0]) for v, l in ds])
    return np.stack(videos), np.array(labels)


def test_stream_resumed_at_an_example_equals_the_uninterrupted_stream():
    """Exact resume: from start_example=k the stream is the stream from 0 without its first k examples; with 2
    input pipelines of one replica each, pipeline i holds the examples i, i + 2, ... of the one-pipeline stream."""
    videos, labels = _stream(14)
    for k in (1, 5):
        resumed = _stream(14 - k, start_example=k)
        np.testing.assert_array_equal(resumed[0], videos[k:])
        np.testing.assert_array_equal(resumed[1], labels[k:])
    for i in range(2):
        np.testing.assert_array_equal(_stream(7, pipelines=2, pipeline_id=i)[0], videos[i::2])
        resumed = _stream(4, start_example=6, pipelines=2, pipeline_id=i)  # after 3 global batches of 2
        np.testing.assert_array_equal(resumed[0], videos[6 + i::2][:4])
        np.testing.assert_array_equal(resumed[1], labels[6 + i::2][:4])


def test_stream_is_a_function_of_the_seed():
    np.testing.assert_array_equal(_stream(4, seed=7)[0], _stream(4, seed=7)[0])
    assert not np.array_equal(_stream(4, seed=7)[0], _stream(4, seed=8)[0])


def test_start_example_does_not_change_evaluation():
    a = synthetic.moving_shapes(2, 3, 8, 5, training=False, eval_examples=4)
    b = synthetic.moving_shapes(2, 3, 8, 5, training=False, eval_examples=4, start_example=3)
    for (va, la), (vb, lb) in zip(a, b):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
        np.testing.assert_array_equal(la.numpy(), lb.numpy())
