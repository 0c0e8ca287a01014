"""dvdgan-sample: videos of one class from an exported generator (SavedModel), as mp4 or animated GIF.

    dvdgan-sample --export_dir=runs/demo/export/2000 --label=3 --num=8 --out=class3.mp4
    dvdgan-sample --export_dir=exports/demo --label=0 --num=1 --truncation=1.0 --seed=7 --out=one.gif
    dvdgan-sample --export_dir=exports/demo --label=0 --num=4 --truncation=0.5 --truncation_convention=scaled \
        --out=scaled.gif

Only the SavedModel is used (its ``latents`` and ``serving_default`` signatures); K > 1 samples are tiled
into a grid (--cols per row, default about square).
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


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from dvdgan_tf.io import video as video_io  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.cli.common import run_reporting_errors  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.errors import ConfigError  # pylint: disable=import-outside-toplevel

    def body():
        if not FLAGS.export_dir or not FLAGS.out or FLAGS.label is None:
            raise ConfigError("--export_dir, --label and --out are needed, e.g. dvdgan-sample "
                              "--export_dir=runs/demo/export/2000 --label=0 --num=4 --out=samples.mp4.")
        video_io.check_video_path(FLAGS.out)  # these checks come before the slow TensorFlow import and load
        check_export(FLAGS.export_dir, FLAGS.label)
        if FLAGS.num < 1 or (FLAGS.cols is not None and FLAGS.cols < 1) or FLAGS.fps < 1:
            raise ConfigError(f"--num, --cols and --fps must be >= 1, got {FLAGS.num}, {FLAGS.cols}, {FLAGS.fps}.")
        if not FLAGS.truncation >= 0 or FLAGS.truncation == float("inf"):
            raise ConfigError(f"--truncation must be a finite number >= 0 (0: no truncation), got "
                              f"{FLAGS.truncation}.")
        write_samples()

    return run_reporting_errors("dvdgan-sample", body)


def check_export(export_dir, label):
    """Fails fast, without TensorFlow, on a folder that is no export or a label outside its class range (read
    from the export's assets/dvdgan_export.json; the SavedModel checks again when run)."""
    from dvdgan_tf.errors import ConfigError, DataError  # pylint: disable=import-outside-toplevel
    if not os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        raise DataError(f"{export_dir} is not a SavedModel export (no saved_model.pb): give a folder written by "
                        f"dvdgan-export or a training run's model_dir/export/<step>/.")
    metadata_path = os.path.join(export_dir, "assets", "dvdgan_export.json")
    if os.path.isfile(metadata_path):
        with open(metadata_path, encoding="utf-8") as f:
            num_classes = json.load(f)["num_classes"]
        if not 0 <= label < num_classes:
            raise ConfigError(f"label {label} is outside the class range [0, {num_classes}) of this export.")


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
