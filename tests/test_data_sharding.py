"""data.sharding: each input pipeline reads its contiguous block of every global batch, so that the global batch
holds examples [g * B, (g + 1) * B) in row order whatever the number of hosts (expected values written out by
hand from that rule)."""
import pytest
import tensorflow as tf

from dvdgan_tf.data import sharding, synthetic


def _take(ds, n):
    return [int(i) for i in ds.take(n)]


def test_one_pipeline_reads_every_example_in_order():
    assert _take(sharding.training_indices(0, 2), 5) == [0, 1, 2, 3, 4]
    assert _take(sharding.training_indices(12, 2, tf.distribute.InputContext(1, 0, 4)), 3) == [12, 13, 14]


def test_two_pipelines_of_two_replicas_read_contiguous_blocks():
    # 2 hosts x 2 replicas x 2 clips: global batch 8, each host a block of 4.
    host = [_take(sharding.training_indices(0, 2, tf.distribute.InputContext(2, k, 4)), 8) for k in (0, 1)]
    assert host[0] == [0, 1, 2, 3, 8, 9, 10, 11]
    assert host[1] == [4, 5, 6, 7, 12, 13, 14, 15]
    # resumed after two global batches (start_example 16):
    assert _take(sharding.training_indices(16, 2, tf.distribute.InputContext(2, 1, 4)), 4) == [20, 21, 22, 23]


def test_bad_splits_are_refused():
    with pytest.raises(ValueError, match="not a multiple of the global batch"):
        sharding.training_indices(3, 2, tf.distribute.InputContext(2, 0, 2))
    with pytest.raises(ValueError, match="does not divide"):
        sharding.training_indices(0, 1, tf.distribute.InputContext(2, 0, 1))


def test_moving_shapes_pipelines_together_give_the_one_pipeline_batches():
    kwargs = dict(num_frames=2, resolution=16, num_classes=3, seed=5)
    whole = next(iter(synthetic.moving_shapes(batch_size=4, **kwargs)))[0].numpy()
    parts = [next(iter(synthetic.moving_shapes(batch_size=2, input_context=tf.distribute.InputContext(2, k, 2),
                                               **kwargs)))[0].numpy() for k in (0, 1)]
    assert (whole[:2] == parts[0]).all() and (whole[2:] == parts[1]).all()
