"""Convolutional GRU over the time axis of a video feature map."""
import keras
import tensorflow as tf

from dvdgan_tf.nets.spectral_norm import SNConv


class ConvGRU(keras.layers.Layer):
    """ConvGRU with 3x3 spectrally normalised convolutions, sigmoid gates and a ReLU candidate.

    For each frame t, with x_t the input and h the hidden state (input and hidden concatenated on channels):
        r, u = sigmoid(conv_g([x_t; h]))
        c    = relu(conv_c([x_t; r * h]))
        h    = u * h + (1 - u) * c
    Because convolution is linear in its input, the input half of both kernels is applied to all frames at once
    (time folded into the batch); only the hidden half runs step by step. The result equals the per-step form.

    call(x, initial_state=None): x [B, T, H, W, C_in]; initial_state [B, H, W, C_h] or None (zeros).
    Returns [B, T, H, W, C_h], the hidden state after each frame. T must be static.
    """

    def __init__(self, channels, kernel_size=3, kernel_initializer="orthogonal", **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.gates = SNConv(2 * channels, kernel_size, kernel_initializer=kernel_initializer, name="gates")
        self.candidate = SNConv(channels, kernel_size, kernel_initializer=kernel_initializer, name="candidate")

    def build(self, x_shape, initial_state_shape=None):
        if len(x_shape) != 5:
            raise ValueError(f"ConvGRU expects [B, T, H, W, C], got shape {tuple(x_shape)}.")
        concat_shape = tuple(x_shape[:-1]) + (int(x_shape[-1]) + self.channels,)
        self.gates.build(concat_shape)
        self.candidate.build(concat_shape)
        self._input_channels = int(x_shape[-1])

    def call(self, x, initial_state=None, training=False):
        cin = self._input_channels
        w_gates = self.gates.normalized_kernel(training)
        w_cand = self.candidate.normalized_kernel(training)
        x_gates = self.gates.convolve(x, w_gates[..., :cin, :])  # bias included here, once
        x_cand = self.candidate.convolve(x, w_cand[..., :cin, :])
        # The hidden halves in the compute dtype, cast once (not per frame: each cast would be a kernel-sized
        # buffer kept for the backward pass).
        k_gates, k_cand = (tf.cast(w[..., cin:, :], x.dtype) for w in (w_gates, w_cand))
        h_gates_conv = lambda h: tf.nn.conv2d(h, k_gates, 1, "SAME")
        h_cand_conv = lambda h: tf.nn.conv2d(h, k_cand, 1, "SAME")
        if initial_state is None:
            h = tf.zeros(tf.concat([tf.shape(x)[:1], tf.shape(x)[2:4], [self.channels]], 0), x.dtype)
        else:
            h = tf.cast(initial_state, x.dtype)
        outputs = []
        for t in range(x.shape[1]):
            r, u = tf.split(tf.sigmoid(x_gates[:, t] + h_gates_conv(h)), 2, axis=-1)
            c = tf.nn.relu(x_cand[:, t] + h_cand_conv(r * h))
            h = u * h + (1.0 - u) * c
            outputs.append(h)
        return tf.stack(outputs, axis=1)
