"""Class accuracy of generated videos: does a classifier trained on real clips recognise the class asked for?

A monitoring metric for class-conditional training on the embedded data (and any labelled dataset): a small 3-D
conv net is trained on real clips, then classifies EMA-generator samples drawn for known labels. Chance level is
1 / num_classes. It is not a paper metric.
"""
import keras
import numpy as np
import tensorflow as tf

from dvdgan_tf.nets.generator import sample_latents


def make_classifier(num_classes, width=16, seed=0):
    """A small video classifier: [B, T, H, W, 3] in [-1, 1] -> logits [B, num_classes]."""
    init = keras.initializers.HeNormal(seed=seed)
    conv = lambda c, s: keras.layers.Conv3D(c, 3, strides=s, padding="same", activation="relu",
                                            kernel_initializer=init)
    return keras.Sequential([conv(width, (1, 2, 2)), conv(2 * width, 2), conv(4 * width, 2),
                             keras.layers.GlobalAveragePooling3D(),
                             keras.layers.Dense(num_classes, kernel_initializer=init)], name="class_classifier")


def train_classifier(dataset_fn, num_frames, resolution, num_classes, steps=200, batch_size=32, seed=0):
    """Trains ``make_classifier`` on ``dataset_fn``'s training stream with Adam.

    Returns (classifier, accuracy on the dataset's evaluation split), the latter in [0, 1].
    """
    args = dict(batch_size=batch_size, num_frames=num_frames, resolution=resolution, num_classes=num_classes)
    classifier = make_classifier(num_classes, seed=seed)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    classifier.fit(dataset_fn(training=True, seed=seed + 7, **args).take(steps), epochs=1, verbose=0,
                   shuffle=False)  # the stream is already random
    _, accuracy = classifier.evaluate(dataset_fn(training=False, seed=seed + 7, **args), verbose=0)
    return classifier, float(accuracy)


def generated_class_accuracy(classifier, generator, num_classes, samples_per_class=16, seed=0, batch_size=32):
    """Fraction in [0, 1] of generator samples (fixed z under ``seed``) classified as the label they were drawn
    for, over ``samples_per_class`` samples of every class."""
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), samples_per_class)
    z = sample_latents(len(labels), generator.z_dim, seed=tf.constant([seed, 1717]))
    correct = 0
    for start in range(0, len(labels), batch_size):
        y = labels[start:start + batch_size]
        videos = generator(z[start:start + batch_size], tf.constant(y), training=False)
        correct += int(np.sum(np.argmax(classifier(videos, training=False).numpy(), axis=-1) == y))
    return correct / len(labels)
