"""dvdgan-export: writes a training run's EMA generator, from one of its checkpoints, as a SavedModel.

    dvdgan-export --model_dir=runs/demo --out=exports/demo            # the latest checkpoint
    dvdgan-export --model_dir=runs/demo --step=2000 --out=exports/demo_2000
    dvdgan-export --model_dir=runs/demo --out=exports/demo --standing_truncations=0,0.5,1
"""
import sys

from dvdgan_tf.cli import common  # noqa: E402  (defines --verbose)

common.quiet_unless_verbose()  # before TensorFlow loads: its log lines only with --verbose

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(common)  # --verbose, listed by --help
flags.DEFINE_string("model_dir", None, "The dvdgan-train model dir (holds operative_config.gin and checkpoints/).")
flags.DEFINE_integer("step", None, "Training step of the checkpoint to export (default: the latest).")
flags.DEFINE_string("out", None, "Folder to write the SavedModel to (replaced if it already holds an export).")
flags.DEFINE_list("standing_truncations", None, "Truncation values (0: none) to store standing BN statistics for; "
                  "the export's signatures use those of the stored value nearest the truncation asked for "
                  "(default: the run's export_generator.standing_truncations, else 0,1).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from dvdgan_tf.cli.common import run_reporting_errors  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.errors import ConfigError  # pylint: disable=import-outside-toplevel

    def body():
        if not FLAGS.model_dir or not FLAGS.out:
            raise ConfigError("both --model_dir (a dvdgan-train model dir) and --out (the export folder) are "
                              "needed, e.g. dvdgan-export --model_dir=runs/demo --out=exports/demo.")
        from dvdgan_tf.training import run_dir  # pylint: disable=import-outside-toplevel
        values = None
        if FLAGS.standing_truncations is not None:
            try:
                values = [float(v) for v in FLAGS.standing_truncations]
            except ValueError:
                values = []
            if not values or any(not v >= 0 or v == float("inf") for v in values):
                raise ConfigError(f"--standing_truncations must be a comma-separated list of finite numbers >= 0 "
                                  f"(0: no truncation), e.g. --standing_truncations=0,0.5,1; got "
                                  f"{','.join(FLAGS.standing_truncations)!r}.")
        print(f"dvdgan-export: restoring the EMA generator from {FLAGS.model_dir} ...", file=sys.stderr)
        path, step = run_dir.export_checkpoint(FLAGS.model_dir, FLAGS.out, FLAGS.step,
                                               standing_truncations=values)
        print(f"exported the EMA generator of step {step} to {path}")

    return run_reporting_errors("dvdgan-export", body)


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
