"""dvdgan-train: the training binary. Flags cover infrastructure only; everything a researcher tunes is gin.

    dvdgan-train --gin_file=gin/demo.gin --model_dir=runs/demo          # train (resumes if model_dir has a run)
    dvdgan-train --gin_file=gin/ucf101.gin --dry_run                    # config and network sizes only
    dvdgan-train --gin_file=gin/demo.gin --gin_param=train.num_steps=20 --model_dir=runs/quick
"""
import sys

from dvdgan_tf.cli import common  # noqa: E402  (defines --verbose)

common.quiet_unless_verbose()  # before TensorFlow loads: its log lines only with --verbose

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(common)  # --verbose, listed by --help
flags.DEFINE_multi_string("gin_file", [], "gin config file(s), parsed in order, e.g. gin/ucf101.gin.")
flags.DEFINE_multi_string("gin_param", [], "gin binding(s) applied after the files, e.g. 'D_S.k = 4'.")
flags.DEFINE_string("model_dir", None, "Run directory: checkpoints, TensorBoard logs, samples, exports. "
                    "Re-running with the same model_dir resumes.")
common.define_strategy_flag()  # --strategy, --tpu, --collective_timeout_s: shared with dvdgan-eval
flags.DEFINE_bool("dry_run", False, "Print the resolved configuration and the parameter counts of G, D_S and "
                  "D_T, then exit without training.")


def dry_run(gin_files, gin_params, out=sys.stdout):
    """Parses the config, builds G, D_S and D_T symbolically (no activations) and prints config and sizes."""
    import gin  # pylint: disable=import-outside-toplevel
    from dvdgan_tf import config  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.nets import networks as models  # pylint: disable=import-outside-toplevel

    config.parse_config(gin_files, gin_params)
    networks = models.build_networks(kernel_initializer="zeros")  # sizes only: skip costly orthogonal init
    shapes = models.build_weights_symbolically(networks)
    counts = models.parameter_counts(networks)
    print("# Resolved configuration", file=out)
    print(gin.config_str(), file=out)
    print("# Trainable parameters", file=out)
    for name in ("G", "D_S", "D_T"):
        print(f"{name}: {counts[name]:,} parameters, output shape {list(shapes[name])} (batch 1)", file=out)
        if name == "G" and "G.encoder" in counts:  # DVD-GAN-FP
            print(f"  of which the context encoder (G.encoder): {counts['G.encoder']:,}", file=out)
    return counts


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from dvdgan_tf.cli.common import run_reporting_errors  # pylint: disable=import-outside-toplevel
    # Ctrl-C / SIGTERM from here on stop the run cleanly, also while TensorFlow is still loading.
    from dvdgan_tf.training.signals import StopRequest  # pylint: disable=import-outside-toplevel

    # Not exited: the handlers stay until the process ends, so a late signal cannot kill the final save or exit.
    stop = StopRequest().__enter__()

    def body():
        if FLAGS.dry_run:
            dry_run(FLAGS.gin_file, FLAGS.gin_param)
        else:
            run_training(FLAGS.gin_file, FLAGS.gin_param, FLAGS.model_dir, None, stop=stop)

    # Invalid network settings (k > T, a resolution not 4 * 2^n, ...) are ValueErrors from the networks; a gin
    # value of the wrong type (G.ch = 'abc') surfaces as a TypeError where it is used.
    return run_reporting_errors("dvdgan-train", body, also=(ValueError, TypeError))


def run_training(gin_files, gin_params, model_dir, strategy_name, stop=None):
    """Parses the config and trains into model_dir under the strategy ``strategy_name`` (None: --strategy, with
    --tpu and --collective_timeout_s); prints where to look (the chief only, in a multi-worker job)."""
    from dvdgan_tf import config  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.training import loop as training  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.errors import ConfigError  # pylint: disable=import-outside-toplevel
    if not model_dir:
        raise ConfigError("--model_dir is required for training (e.g. --model_dir=runs/demo); re-using a "
                          "model_dir resumes its run.")
    config.parse_config(gin_files, gin_params)
    strategy = common.make_strategy(strategy_name)
    from dvdgan_tf.training import strategies  # pylint: disable=import-outside-toplevel
    result = training.train(model_dir, strategy=strategy, stop=stop)
    if not strategies.is_chief(strategy):
        print(f"dvdgan-train ({strategies.task_name(strategy)}): {'stopped' if result['stopped_by'] else 'finished'} "
              f"at step {result['step']}; the chief wrote the run into its --model_dir.")
        return
    print(f"dvdgan-train: {'stopped' if result['stopped_by'] else 'finished'} at step {result['step']}; "
          f"TensorBoard: tensorboard --logdir {model_dir}")


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
