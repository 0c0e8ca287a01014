"""Which training examples each input pipeline (host) reads, so that a global batch holds the same clips in the
same rows on any number of hosts and replicas.

The training stream is the sequence of example indices 0, 1, 2, ...; global batch g holds examples
[g * B, (g + 1) * B) in row order, and replica r of the whole job takes rows [r * b, (r + 1) * b) (b = B / R). A
host's replicas are consecutive (TensorFlow numbers replicas host by host), so input pipeline k of n reads the
contiguous block [g * B + k * L, g * B + (k + 1) * L) of every global batch, L = B / n, and hands its
per-replica batches to its replicas in order. With one pipeline this is 0, 1, 2, ... .
"""
import tensorflow as tf


def training_indices(start_example, batch_size, input_context=None):
    """The endless tf.data stream of example indices (int64) this input pipeline reads, from global example
    ``start_example`` (a multiple of the global batch: a run resumed after s steps passes s * d_steps * B).

    batch_size: clips per replica (the dataset functions' argument). input_context: a tf.distribute.InputContext
    or None (one pipeline)."""
    if input_context is None or input_context.num_input_pipelines == 1:
        return tf.data.Dataset.counter(start=start_example)
    n, k = input_context.num_input_pipelines, input_context.input_pipeline_id
    global_batch = batch_size * input_context.num_replicas_in_sync
    if global_batch % n:
        raise ValueError(f"the global batch ({global_batch} clips) does not divide among {n} input pipelines.")
    if start_example % global_batch:
        raise ValueError(f"start_example {start_example} is not a multiple of the global batch {global_batch}.")
    block = global_batch // n
    first = start_example // global_batch * block
    return tf.data.Dataset.counter(start=first).map(
        lambda j: j // block * global_batch + k * block + j % block)
