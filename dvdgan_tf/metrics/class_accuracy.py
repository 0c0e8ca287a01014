"""Class accuracy of generated videos: does a classifier trained on real clips recognise the class asked for?

A monitoring metric for class-conditional training on the embedded data (and any labelled dataset): a small 3-D
conv net is trained on real clips, then classifies EMA-generator samples drawn for known labels. Chance level is
1 / num_classes. It is not a paper metric. Its colour-blind form trains and applies the classifier to grey-scale
clips (``grayscale``), so that it can use only shape and motion: the embedded classes differ in colour too, and a
generator could pass the colour check with the right colour in the wrong shape or motion.

``first_frame_ratio`` checks the start of the clips: the mean brightness of frame 0 over that of frames 1..T-1
(real clips of the embedded data: about 1), which exposes generators whose first frames are dimmer than the rest.
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


# ITU-R BT.601 luma weights (as tf.image.rgb_to_grayscale).
LUMA = (0.299, 0.587, 0.114)


def grayscale(videos):
    """Grey-scale videos [..., 3] -> [..., 3]: the BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B in all three
    channels (so the classifier keeps its input shape). Linear, so [-1, 1] stays [-1, 1]."""
    videos = tf.convert_to_tensor(videos)
    luma = tf.reduce_sum(videos * tf.constant(LUMA, videos.dtype), axis=-1, keepdims=True)
    return tf.repeat(luma, 3, axis=-1)


def first_frame_ratio(videos):
    """Mean brightness of frame 0 over the mean brightness of frames 1..T-1, for videos [B, T, H, W, 3] in
    [-1, 1] (brightness: (x + 1) / 2, averaged over the batch, pixels and channels). 1 when the first frame is as
    bright as the rest."""
    brightness = (np.asarray(videos, np.float64) + 1.0) / 2.0
    return float(brightness[:, 0].mean() / brightness[:, 1:].mean())


def _as_is(video, label):
    return video, label


def _in_grey(video, label):
    return grayscale(video), label


def train_classifier(dataset_fn, num_frames, resolution, num_classes, steps=200, batch_size=32, seed=0,
                     colour=True):
    """Trains ``make_classifier`` on ``dataset_fn``'s training stream with Adam; with colour=False on grey-scale
    clips (``grayscale``), the colour-blind classifier.

    Returns (classifier, accuracy on the dataset's evaluation split), the latter in [0, 1].
    """
    args = dict(batch_size=batch_size, num_frames=num_frames, resolution=resolution, num_classes=num_classes)
    view = _as_is if colour else _in_grey
    classifier = make_classifier(num_classes, seed=seed)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    classifier.fit(dataset_fn(training=True, seed=seed + 7, **args).take(steps).map(view), epochs=1, verbose=0,
                   shuffle=False)  # the stream is already random
    _, accuracy = classifier.evaluate(dataset_fn(training=False, seed=seed + 7, **args).map(view), verbose=0)
    return classifier, float(accuracy)


def real_first_frame_ratio(dataset_fn, num_frames, resolution, num_classes, num_clips=64, seed=0):
    """``first_frame_ratio`` of the first num_clips clips of the dataset's evaluation split (or all it has)."""
    args = dict(batch_size=min(num_clips, 32), num_frames=num_frames, resolution=resolution, num_classes=num_classes)
    clips = []
    for video, _ in dataset_fn(training=False, seed=seed + 7, **args):
        clips.append(video.numpy())
        if sum(len(c) for c in clips) >= num_clips:
            break
    return first_frame_ratio(np.concatenate(clips)[:num_clips])


def generated_samples(generator, num_classes, samples_per_class=16, seed=0, batch_size=32):
    """(videos [N, T, H, W, 3] in [-1, 1], labels [N]): ``samples_per_class`` samples of every class, fixed z
    under ``seed``, in inference mode."""
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), samples_per_class)
    z = sample_latents(len(labels), generator.z_dim, seed=tf.constant([seed, 1717]))
    videos = [generator(z[start:start + batch_size], tf.constant(labels[start:start + batch_size]),
                        training=False).numpy() for start in range(0, len(labels), batch_size)]
    return np.concatenate(videos), labels


def accuracy_on(classifier, videos, labels, colour=True, batch_size=32):
    """Fraction in [0, 1] of videos that ``classifier`` assigns to their label (grey-scale first when
    colour=False, for the colour-blind classifier)."""
    correct = 0
    for start in range(0, len(labels), batch_size):
        x = videos[start:start + batch_size]
        x = x if colour else grayscale(x)
        correct += int(np.sum(np.argmax(classifier(x, training=False).numpy(), axis=-1)
                              == labels[start:start + batch_size]))
    return correct / len(labels)


def generated_class_accuracy(classifier, generator, num_classes, samples_per_class=16, seed=0, batch_size=32,
                             colour=True):
    """Fraction in [0, 1] of generator samples (fixed z under ``seed``) classified as the label they were drawn
    for, over ``samples_per_class`` samples of every class."""
    videos, labels = generated_samples(generator, num_classes, samples_per_class, seed, batch_size)
    return accuracy_on(classifier, videos, labels, colour, batch_size)
