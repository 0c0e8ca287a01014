"""dvdgan-train: the training binary. Flags cover infrastructure only; everything a researcher tunes is gin.

    dvdgan-train --gin_file=gin/ucf101.gin --dry_run
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "gin config file(s), parsed in order, e.g. gin/ucf101.gin.")
flags.DEFINE_multi_string("gin_param", [], "gin binding(s) applied after the files, e.g. 'D_S.k = 4'.")
flags.DEFINE_string("model_dir", None, "Directory for checkpoints, logs and exports.")
flags.DEFINE_bool("dry_run", False, "Print the resolved configuration and the parameter counts of G, D_S and "
                  "D_T, then exit without training.")


def dry_run(gin_files, gin_params, out=sys.stdout):
    """Parses the config, builds G, D_S and D_T symbolically (no activations) and prints config and sizes."""
    import gin  # pylint: disable=import-outside-toplevel
    from dvdgan_tf import config, models  # pylint: disable=import-outside-toplevel

    config.parse_config(gin_files, gin_params)
    networks = models.build_networks(kernel_initializer="zeros")  # sizes only: skip costly orthogonal init
    shapes = models.build_weights_symbolically(networks)
    counts = models.parameter_counts(networks)
    print("# Resolved configuration", file=out)
    print(gin.config_str(), file=out)
    print("# Trainable parameters", file=out)
    for name in ("G", "D_S", "D_T"):
        print(f"{name}: {counts[name]:,} parameters, output shape {list(shapes[name])} (batch 1)", file=out)
    return counts


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from dvdgan_tf.errors import DvdganError  # pylint: disable=import-outside-toplevel
    try:
        if FLAGS.dry_run:
            dry_run(FLAGS.gin_file, FLAGS.gin_param)
            return 0
    except (DvdganError, ValueError) as e:
        print(f"dvdgan-train: error: {e}", file=sys.stderr)
        return 2
    print("dvdgan-train: the training loop is not part of this release yet; run with --dry_run to check a "
          "config and its network sizes.", file=sys.stderr)
    return 2


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
