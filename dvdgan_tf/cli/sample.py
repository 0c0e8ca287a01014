"""dvdgan-sample: videos of one class from an exported generator (SavedModel), as mp4 or animated GIF.

    dvdgan-sample --export_dir=runs/demo/export/2000 --label=3 --num=8 --out=class3.mp4
    dvdgan-sample --export_dir=exports/demo --label=0 --num=1 --truncation=1.0 --seed=7 --out=one.gif
    dvdgan-sample --export_dir=exports/demo --label=0 --num=4 --truncation=0.5 --truncation_convention=scaled \
        --out=scaled.gif

Only the SavedModel is used (its ``latents`` and ``serving_default`` signatures); K > 1 samples are tiled
into a grid (--cols per row, default about square).

A prediction export (DVD-GAN-FP, G.context_frames = C > 0) continues a real clip:

    dvdgan-sample --export_dir=runs/bair_fp/export/100000 --context=clip.mp4 --num=4 --out=pred.gif

reads clip.mp4 (or an animated .gif), resizes its short side to the model's resolution and takes the centre
square (as the data pipeline prepares evaluation clips), takes its first C frames as the context and writes
--num predictions, one per row, each beside the real clip: left the real clip (its first T frames; frames
beyond its end black), right the prediction (the same C context frames, then the T - C predicted ones).
--label (default 0) is the class the predictions are conditioned on (needed when the export has several).
"""
import json
import math
import os

from dvdgan_tf.cli import common  # noqa: E402  (defines --verbose)

common.quiet_unless_verbose()  # before TensorFlow loads: its log lines only with --verbose

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(common)  # --verbose, listed by --help
flags.DEFINE_string("export_dir", None, "SavedModel folder written by dvdgan-export or a run's export/<step>/.")
flags.DEFINE_integer("label", None, "Class index of the samples, in [0, number of classes).")
flags.DEFINE_integer("num", 1, "Number of samples; more than 1 gives a grid.")
flags.DEFINE_float("truncation", 0.0, "Truncation trick with threshold T (0 = none); see --truncation_convention.")
flags.DEFINE_enum("truncation_convention", "resample", ["resample", "scaled"],
                  "'resample' (BigGAN paper): z from N(0, I) truncated to [-T, T], values beyond T redrawn; "
                  "'scaled' (TF-Hub BigGAN): z = T * truncnorm(-2, 2).")
flags.DEFINE_integer("seed", 0, "Seed of z (same seed, same samples).")
flags.DEFINE_integer("cols", None, "Samples per grid row (default: ceil(sqrt(num))).")
flags.DEFINE_integer("fps", 8, "Frames per second of the output.")
flags.DEFINE_integer("batch_size", 8, "Samples generated at once (lower it if memory is short).")
flags.DEFINE_string("out", None, "Output file: .mp4 (H.264) or .gif (animated).")
flags.DEFINE_string("context", None, "Prediction exports only: a clip (.mp4 or animated .gif) whose first C frames "
                    "the predictions continue; the output shows each prediction beside the real clip.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from dvdgan_tf.io import video as video_io  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.cli.common import run_reporting_errors  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.errors import ConfigError  # pylint: disable=import-outside-toplevel

    def body():
        if not FLAGS.export_dir or not FLAGS.out or (FLAGS.label is None and FLAGS.context is None):
            raise ConfigError("--export_dir, --label and --out are needed, e.g. dvdgan-sample "
                              "--export_dir=runs/demo/export/2000 --label=0 --num=4 --out=samples.mp4 (a prediction "
                              "export: --context=clip.mp4 instead of --label).")
        video_io.check_video_path(FLAGS.out)  # these checks come before the slow TensorFlow import and load
        metadata = check_export(FLAGS.export_dir, FLAGS.label)
        if FLAGS.num < 1 or (FLAGS.cols is not None and FLAGS.cols < 1) or FLAGS.fps < 1:
            raise ConfigError(f"--num, --cols and --fps must be >= 1, got {FLAGS.num}, {FLAGS.cols}, {FLAGS.fps}.")
        if not FLAGS.truncation >= 0 or FLAGS.truncation == float("inf"):
            raise ConfigError(f"--truncation must be a finite number >= 0 (0: no truncation), got "
                              f"{FLAGS.truncation}.")
        context_frames = (metadata or {}).get("context_frames", 0)
        if FLAGS.context is None and context_frames:
            raise ConfigError(f"{FLAGS.export_dir} is a prediction model: it continues {context_frames} context "
                              f"frame(s) of a real clip. Give one with --context=clip.mp4 (or .gif).")
        if FLAGS.context is not None and not context_frames:
            raise ConfigError(f"{FLAGS.export_dir} is a synthesis model (no context frames): it takes no "
                              f"--context. Drop --context (and give --label), or use a prediction export "
                              f"(a run with G.context_frames > 0).")
        if FLAGS.context is not None:
            if metadata.get("num_classes", 1) > 1 and FLAGS.label is None:
                raise ConfigError(f"this export has {metadata['num_classes']} classes: give the class the "
                                  f"predictions are conditioned on with --label (0 ... {metadata['num_classes'] - 1}).")
            clip = read_clip(FLAGS.context, metadata["resolution"], context_frames, metadata["num_frames"])
            write_predictions(clip, context_frames, FLAGS.label or 0)
            return
        write_samples()

    return run_reporting_errors("dvdgan-sample", body)


def check_export(export_dir, label):
    """Fails fast, without TensorFlow, on a folder that is no export or a label outside its class range (read
    from the export's assets/dvdgan_export.json; the SavedModel checks again when run). Returns that metadata
    (None for an export without it)."""
    from dvdgan_tf.errors import ConfigError, DataError  # pylint: disable=import-outside-toplevel
    isfile, opener = os.path.isfile, open
    if "://" in str(export_dir):  # gs://, ram://: through tf.io.gfile (TensorFlow loads now)
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        isfile = lambda p: tf.io.gfile.exists(p) and not tf.io.gfile.isdir(p)  # noqa: E731
        opener = lambda p, encoding: tf.io.gfile.GFile(p, "r")  # noqa: E731
        export_dir = str(export_dir).rstrip("/")
    if not isfile(os.path.join(export_dir, "saved_model.pb")):
        raise DataError(f"{export_dir} is not a SavedModel export (no saved_model.pb): give a folder written by "
                        f"dvdgan-export or a training run's model_dir/export/<step>/.")
    metadata_path = os.path.join(export_dir, "assets", "dvdgan_export.json")
    metadata = None
    if isfile(metadata_path):
        with opener(metadata_path, encoding="utf-8") as f:
            metadata = json.load(f)
        num_classes = metadata["num_classes"]
        if label is not None and not 0 <= label < num_classes:
            raise ConfigError(f"label {label} is outside the class range [0, {num_classes}) of this export.")
    return metadata


def read_clip(path, resolution, context_frames, num_frames):
    """The clip of --context as the data pipeline prepares an evaluation clip: decoded (PyAV), the short side
    resized to ``resolution`` (area interpolation, ``data.decode``), the centred square crop, values x / 127.5 -
    1. Returns float32 [min(frames, num_frames), resolution, resolution, 3]; DataError for a file that cannot
    be read or has fewer than ``context_frames`` frames."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.data import decode  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.errors import DataError  # pylint: disable=import-outside-toplevel
    if "://" not in str(path) and not os.path.isfile(path):  # gs://, ram://: read_video reads them (tf.io.gfile)
        raise DataError(f"--context file {path} does not exist: give a clip (.mp4 or animated .gif).")
    try:
        frames = decode.read_video(path, resolution, max_frames=num_frames).frames
    except decode.VideoReadError as e:
        raise DataError(f"cannot read --context clip {path} ({e}): give an .mp4 or animated .gif that FFmpeg can "
                        f"decode.") from e
    if len(frames) < context_frames:
        raise DataError(f"--context clip {path} has {len(frames)} frame(s), fewer than the {context_frames} "
                        f"context frames this model continues: give a clip of at least {context_frames} frames.")
    height, width = frames.shape[1:3]
    top, left = (height - resolution) // 2, (width - resolution) // 2
    frames = frames[:, top:top + resolution, left:left + resolution]
    return np.clip(frames.astype(np.float32) / 127.5 - 1.0, -1.0, 1.0)


def write_predictions(clip, context_frames, label):
    """FLAGS.num predictions continuing ``clip``'s first ``context_frames`` frames, each beside the real clip
    (one row per prediction: real | predicted), written to FLAGS.out."""
    # pylint: disable=import-outside-toplevel
    import numpy as np
    from dvdgan_tf.export import saved_model as export
    from dvdgan_tf.io import video as video_io
    from dvdgan_tf.io.console import ProgressBar

    model = export.load_export(FLAGS.export_dir)
    with ProgressBar(FLAGS.num, unit="video", description="dvdgan-sample") as bar:
        videos = export.predict_videos(model, clip[:context_frames], label, FLAGS.num, FLAGS.truncation, FLAGS.seed,
                                       FLAGS.batch_size, on_progress=lambda done, _: bar.update(done),
                                       convention=FLAGS.truncation_convention)
    real = np.zeros_like(videos[0])
    real[:len(clip)] = video_io.to_uint8(clip)
    pairs = np.stack([v for video in videos for v in (real, video)])
    frames = video_io.video_grid(pairs, cols=2, padding=2)
    video_io.write_video(FLAGS.out, frames, fps=FLAGS.fps)
    print(f"wrote {FLAGS.num} prediction(s) of class {label} from {context_frames} context frame(s) of "
          f"{FLAGS.context}, each beside the real clip ({len(clip)} of {videos.shape[1]} frames; "
          f"{frames.shape[0]} frames of {frames.shape[2]}x{frames.shape[1]}) to {FLAGS.out}")


def write_samples():
    """Loads the export, generates FLAGS.num videos and writes them (a grid if more than one) to FLAGS.out."""
    # pylint: disable=import-outside-toplevel
    from dvdgan_tf.export import saved_model as export
    from dvdgan_tf.io import video as video_io
    from dvdgan_tf.io.console import ProgressBar

    model = export.load_export(FLAGS.export_dir)
    with ProgressBar(FLAGS.num, unit="video", description="dvdgan-sample") as bar:
        videos = export.sample_videos(model, FLAGS.label, FLAGS.num, FLAGS.truncation, FLAGS.seed,
                                      FLAGS.batch_size, on_progress=lambda done, _: bar.update(done),
                                      convention=FLAGS.truncation_convention)
    cols = FLAGS.cols or math.ceil(math.sqrt(FLAGS.num))
    frames = video_io.video_grid(videos, cols=min(cols, FLAGS.num), padding=2) if FLAGS.num > 1 else videos[0]
    video_io.write_video(FLAGS.out, frames, fps=FLAGS.fps)
    print(f"wrote {FLAGS.num} sample(s) of class {FLAGS.label} ({frames.shape[0]} frames of "
          f"{frames.shape[2]}x{frames.shape[1]}) to {FLAGS.out}")


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
