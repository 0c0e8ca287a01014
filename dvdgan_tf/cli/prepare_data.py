"""dvdgan-prepare-data: turns raw video datasets into the prepared format that training reads.

    dvdgan-prepare-data --source=ucf101 --video_dir=UCF-101 --splits_dir=ucfTrainTestlist \\
        --output_dir=data/ucf101 --resolution=128
    dvdgan-prepare-data --source=kinetics600 --video_dir=kinetics600/clips \\
        --annotations_dir=kinetics600/annotations --output_dir=data/kinetics600_128 --resolution=128
    dvdgan-prepare-data --source=bair --video_dir=softmotion30_44k --output_dir=data/bair --resolution=64
    dvdgan-prepare-data --source=tfds --tfds_name=ucf101/ucf101_1_256 --tfds_data_dir=~/tensorflow_datasets \\
        --output_dir=data/ucf101 --resolution=128
    dvdgan-prepare-data --runner=dataflow --source=kinetics600 --video_dir=gs://B/k600/clips \\
        --annotations_dir=gs://B/k600/annotations --output_dir=gs://B/data/k600_128 --resolution=128 \\
        -- --project=P --region=us-central1 --temp_location=gs://B/tmp --setup_file=./setup.py

Without --runner, shards are written by local worker processes (--workers). With --runner (direct, dataflow,
flink or spark; needs `pip install "dvdgan_tf[beam]"`), the same shards are written by an Apache Beam pipeline;
the runner's own options follow a lone `--`.

Bad inputs are skipped, logged and listed in OUTPUT_DIR/skipped.tsv; re-running the same command resumes.
Exit status 0 when usable videos were written, 2 when nothing usable was (or on a usage error).
"""
import contextlib
import os
import re

from dvdgan_tf.cli import common  # noqa: E402  (defines --verbose)

common.quiet_unless_verbose()  # before TensorFlow loads: its log lines only with --verbose

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(common)  # --verbose, listed by --help
SOURCES = ("ucf101", "kinetics600", "bair", "tfds")
flags.DEFINE_enum("source", None, SOURCES, "Raw data kind: ucf101 (class folders of .avi + split lists), "
                  "kinetics600 (clips + annotation CSVs, or class folders), bair (original TFRecords), tfds (a "
                  "prepared TFDS video dataset).")
flags.DEFINE_string("output_dir", None, "Prepared data directory to write (prepared_videos.data_dir); local "
                    "or gs://.")
flags.DEFINE_integer("resolution", None, "Short side of the stored frames in pixels: the config's RESOLUTION "
                     "(larger also works; training then resizes on the fly).")
flags.DEFINE_string("video_dir", None, "ucf101: the UCF-101 folder of class folders; kinetics600: folder holding "
                    "the clips (searched recursively) or class folders; bair: the softmotion30_44k folder. Input folders may "
                    "be local or gs://.")
flags.DEFINE_string("splits_dir", None, "ucf101: the ucfTrainTestlist folder (classInd.txt, trainlist0N.txt, "
                    "testlist0N.txt).")
flags.DEFINE_integer("ucf_split", 1, "ucf101: official split 1, 2 or 3.")
flags.DEFINE_string("annotations_dir", None, "kinetics600: folder of the annotation CSVs (train.csv, "
                    "validate.csv, ...). Leave out for the class-folder layout.")
flags.DEFINE_string("bair_view", "image_aux1", "bair: camera view, image_aux1 or image_main.")
flags.DEFINE_string("tfds_name", None, "tfds: dataset name with config, e.g. ucf101/ucf101_1_256 or "
                    "bair_robot_pushing_small.")
flags.DEFINE_string("tfds_data_dir", None, "tfds: the TFDS data_dir where that dataset is prepared.")
flags.DEFINE_string("tfds_dir", None, "tfds: a prepared TFDS version folder (instead of --tfds_name), e.g. "
                    "~/tensorflow_datasets/ucf101/ucf101_1_256/2.0.0.")
flags.DEFINE_string("tfds_video_key", None, "tfds: the video feature (default: video, else image_aux1).")
flags.DEFINE_list("splits", None, "Splits to prepare (default: all the source has), e.g. train,test.")
flags.DEFINE_enum("frame_format", "jpeg", ("jpeg", "png"), "Frame encoding: jpeg (small) or png (lossless).")
flags.DEFINE_integer("jpeg_quality", 90, "JPEG quality, 1..100.")
flags.DEFINE_integer("min_frames", 16, "Skip videos with fewer frames than this.")
flags.DEFINE_integer("max_frames", 0, "Keep at most this many frames of each video (0: all).")
flags.DEFINE_integer("frame_step", 1, "Store every frame_step-th frame only: 2 halves the size of Kinetics data "
                     "trained with frame stride 2; frame-conditional prediction needs 1.")
flags.DEFINE_integer("videos_per_shard", 64, "Videos per TFRecord shard.")
flags.DEFINE_integer("workers", os.cpu_count() or 1, "Worker processes (local runner, and --runner=direct "
                     "unless its own --direct_* options are given after '--').")
flags.DEFINE_enum("runner", None, ["direct", "dataflow", "flink", "spark"], "Run the preparation as an Apache "
                  "Beam pipeline on this runner (needs the beam extra); its pipeline options follow a lone '--'. "
                  "Default: local worker processes.")
flags.DEFINE_bool("overwrite", False, "Start again in an output_dir that holds another preparation.")
flags.DEFINE_bool("progress", True, "Show a progress bar on stderr.")

# What Beam's worker processes print that quiet output hides: Python logging lines below ERROR in logging's
# default format (e.g. "INFO:apache_beam.runners.worker.sdk_worker:Control channel established.") and the lines
# TensorFlow prints while it loads in each worker.
BEAM_WORKER_NOISE = re.compile(r"(?:(?:DEBUG|INFO|WARNING):[\w.]*:|"
                               + common._LOAD_NOISE.pattern + r")[^\r\n]*\n?")  # pylint: disable=protected-access


def make_source(source, video_dir=None, splits_dir=None, ucf_split=1, annotations_dir=None, bair_view="image_aux1",
                tfds_name=None, tfds_data_dir=None, tfds_dir=None, tfds_video_key=None):
    """The source reader object for `source` from explicit arguments; raises DataError for missing ones."""
    # pylint: disable=import-outside-toplevel
    from dvdgan_tf.data.sources import bair as sources_bair
    from dvdgan_tf.data.sources import kinetics as sources_kinetics
    from dvdgan_tf.data.sources import tfds as sources_tfds
    from dvdgan_tf.data.sources import ucf101 as sources_ucf101
    from dvdgan_tf.errors import DataError

    def need(value, flag):
        if not value:
            raise DataError(f"--source={source} needs {flag}")
        return value

    if source == "ucf101":
        return sources_ucf101.UCF101Source(need(video_dir, "--video_dir"), need(splits_dir, "--splits_dir"), ucf_split)
    if source == "kinetics600":
        return sources_kinetics.KineticsSource(need(video_dir, "--video_dir"), annotations_dir)
    if source == "bair":
        return sources_bair.BairSource(need(video_dir, "--video_dir"), bair_view)
    if source == "tfds":
        if not (tfds_dir or tfds_name):
            raise DataError("--source=tfds needs --tfds_name (with --tfds_data_dir) or --tfds_dir")
        return sources_tfds.TfdsSource(tfds_name, tfds_data_dir and os.path.expanduser(tfds_data_dir),
                                       tfds_dir and os.path.expanduser(tfds_dir), tfds_video_key)
    raise DataError(f"--source must be one of {SOURCES}, got {source!r}")


def main(argv):
    pipeline_args = argv[1:]  # after a lone '--': the Beam runner's own options
    if pipeline_args and not FLAGS.runner:
        raise app.UsageError(f"unexpected arguments: {pipeline_args} (options after '--' are for a Beam --runner)")
    # pylint: disable=import-outside-toplevel
    from dvdgan_tf.cli.common import run_reporting_errors
    from dvdgan_tf.data import prepare
    from dvdgan_tf.io import console

    def body():
        for flag in ("source", "output_dir", "resolution"):
            if FLAGS[flag].value is None:
                raise app.UsageError(f"--{flag} is required")
        source = make_source(FLAGS.source, FLAGS.video_dir, FLAGS.splits_dir, FLAGS.ucf_split, FLAGS.annotations_dir,
                             FLAGS.bair_view, FLAGS.tfds_name, FLAGS.tfds_data_dir, FLAGS.tfds_dir,
                             FLAGS.tfds_video_key)
        options = prepare.Options(FLAGS.resolution, FLAGS.frame_format, FLAGS.jpeg_quality, FLAGS.min_frames,
                                  FLAGS.max_frames, FLAGS.videos_per_shard, FLAGS.frame_step)
        quiet_workers = FLAGS.runner and not common.verbose_requested()
        with console.filtered_stderr(BEAM_WORKER_NOISE) if quiet_workers else contextlib.nullcontext():
            summary = prepare.prepare(source, FLAGS.output_dir, options, splits=FLAGS.splits,
                                      workers=FLAGS.workers, overwrite=FLAGS.overwrite,
                                      show_progress=FLAGS.progress, runner=FLAGS.runner,
                                      pipeline_args=pipeline_args)
        print(summary.text())

    return run_reporting_errors("dvdgan-prepare-data", body)


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
