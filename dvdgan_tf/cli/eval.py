"""dvdgan-eval: evaluates an exported generator (the SavedModel users ship) with named metric protocols.

    dvdgan-eval --export_dir=exports/ucf --metrics=fvd2048_16f,is2048_16f --gin_file=gin/ucf101.gin --out=e.json
    dvdgan-eval --export_dir=exports/ucf --metrics=fvd2048_16f --real_npz=real_clips.npz
    dvdgan-eval --export_dir=exports/ucf --metrics=isucf2048x10 --c3d_weights=conv3d_deepnetA_ucf.npz \
        --c3d_mean=mean2.npz

Real data comes from the run's gin config (its ``train.dataset_fn``, called with the generator's clip length,
resolution and class count) or from an .npz of uint8 videos [N, T, H, W, 3] of the generator's clip shape. Real
statistics are cached in --stats_cache_dir under a hash of the protocol, the network and the data: for --gin_file
the fully resolved configuration (included files too) and, for prepared data, the data folder's absolute path and
its dataset.json (``metrics.real_data.config_dataset_key``); for --real_npz the file's path, size and time. A
second evaluation of the same data reads no real data; a changed config or re-prepared data computes new ones.
Prints the JSON record and writes it to --out.

    dvdgan-eval --export_dir=exports/ucf --metrics=fvd2048_16f --real_npz=real_clips.npz --strategy=mirrored

--strategy=mirrored (the choices of dvdgan-train) splits generation and the I3D / C3D passes over all local GPUs,
--batch_size clips per replica; the values do not depend on the number of GPUs (``metrics.evaluate``).

A prediction export (DVD-GAN-FP) is scored with the prediction protocols, its continuations of the real clips'
first C frames against those clips:

    dvdgan-eval --export_dir=exports/bair_fp --metrics=fvdpred_bair --gin_file=gin/bair_fp.gin
    dvdgan-eval --export_dir=exports/k600_fp --metrics=fvdpred_k600 --gin_file=gin/kinetics600_fp.gin

Their real clips are the evaluation data by default (--real_split=eval: the config's test split, fixed centred
windows), as the literature's numbers are test-set numbers; --real_split=train scores training clips instead.
Prediction metrics run on the host (one device), whatever --strategy says.
"""
import json
import os

from dvdgan_tf.cli import common  # noqa: E402  (defines --verbose)

common.quiet_unless_verbose()  # before TensorFlow loads: its log lines only with --verbose

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(common)  # --verbose, listed by --help
flags.DEFINE_string("export_dir", None, "The exported generator (SavedModel folder).")
flags.DEFINE_string("metrics", "fvd2048_16f", "Comma-separated metric protocols, e.g. fvd2048_16f,fid2048_16f,"
                    "is2048_16f,isucf2048x10,isv2048_ucf; for prediction exports fvdpred_bair, fvdpred_k600 or "
                    "fvdpred<N>x<R>_<C>c<T>f (see the README's evaluation section).")
flags.DEFINE_string("out", None, "Write the JSON record here (atomically). It is always printed.")
flags.DEFINE_multi_string("gin_file", [], "gin config whose train.dataset_fn gives the real data.")
flags.DEFINE_multi_string("gin_param", [], "gin bindings applied after --gin_file.")
flags.DEFINE_enum("real_split", None, ["train", "eval"], "Which data the dataset function gives: 'train' "
                  "(training=True: the training set, as the paper's real statistics) or 'eval' (training=False: the "
                  "config's evaluation split, fixed windows). Default: 'eval' for the prediction metrics "
                  "(fvdpred_*: test-set clips and their contexts), 'train' for the others.")
flags.DEFINE_string("real_npz", None, "Instead of gin: an .npz with uint8 real videos [N, T, H, W, 3].")
flags.DEFINE_string("real_npz_key", None, "The array in --real_npz (default: 'videos' or its only array).")
flags.DEFINE_integer("num_classes", None, "Classes to draw labels from (default: the export's metadata).")
flags.DEFINE_float("truncation", 0.0, "Truncation trick with threshold t (0: no truncation); see "
                   "--truncation_convention. Passed to the export too, which records it.")
flags.DEFINE_enum("truncation_convention", "resample", ["resample", "scaled"],
                  "'resample' (BigGAN paper): z from N(0, I) truncated to [-t, t], values beyond t redrawn; "
                  "'scaled' (TF-Hub BigGAN): z = t * truncnorm(-2, 2).")
flags.DEFINE_integer("seed", 0, "Seed of z and labels.")
flags.DEFINE_integer("batch_size", 8, "Clips per generator call and per network call; with --strategy=mirrored, "
                     "per replica (R replicas process R x batch_size clips at once).")
common.define_strategy_flag(common.STRATEGY_HELP + " With 'mirrored', generation and the I3D / C3D passes run on "
                            "every replica, and the metrics do not depend on the replica count.")
flags.DEFINE_string("i3d", None, "I3D handle: default the built-in Kinetics-400 I3D; or a SavedModel folder "
                    "(dvdgan-export-i3d, i3d-kinetics-600) or a TF-Hub URL ($TFHUB_CACHE_DIR serves it offline).")
flags.DEFINE_string("c3d_weights", None, "tgan2's conv3d_deepnetA_ucf.npz (UCF-101 IS); default in the cache dir.")
flags.DEFINE_string("c3d_mean", None, "tgan2's mean2.npz (UCF-101 IS); default in the cache dir.")
flags.DEFINE_string("stats_cache_dir", None, "Cache of real statistics (default <cache root>/stats, the cache root "
                    "being $DVDGAN_CACHE_DIR, else $XDG_CACHE_HOME/dvdgan_tf, else ~/.cache/dvdgan_tf; '' "
                    "disables it).")
flags.DEFINE_bool("progress", True, "Show a progress bar on stderr.")


def default_stats_cache_dir():
    """``files.cache_root()``/stats."""
    from dvdgan_tf.io import files  # pylint: disable=import-outside-toplevel
    return os.path.join(files.cache_root(), "stats")


def real_data(gin_files, gin_params, real_npz, real_npz_key, split, batch_size, seed):
    """(real batches or a function making them, dataset key) from the flags; (None, None) if none given."""
    from dvdgan_tf.errors import ConfigError  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.metrics import real_data as real_data_lib  # pylint: disable=import-outside-toplevel
    if real_npz and gin_files:
        raise ConfigError("give either --gin_file or --real_npz for the real data, not both.")
    if real_npz:
        return real_data_lib.npz_batches(real_npz, batch_size, real_npz_key)
    if gin_files:
        from dvdgan_tf import config  # pylint: disable=import-outside-toplevel
        config.parse_config(gin_files, gin_params)
        return real_data_lib.gin_source(batch_size, training=split == "train", seed=seed)
    return None, None


def evaluate_from_flags():
    """Runs the evaluation the flags describe; returns the record."""
    from dvdgan_tf.errors import ConfigError  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.metrics import evaluate, protocols  # pylint: disable=import-outside-toplevel
    if not FLAGS.export_dir:
        raise ConfigError("--export_dir (an exported generator) is required.")
    if FLAGS.batch_size < 1:
        raise ConfigError(f"--batch_size must be at least 1 (clips per network call, per replica with "
                          f"--strategy=mirrored), got {FLAGS.batch_size}.")
    batches, dataset_key = real_data(FLAGS.gin_file, FLAGS.gin_param, FLAGS.real_npz, FLAGS.real_npz_key,
                                     FLAGS.real_split or protocols.default_real_split(FLAGS.metrics),
                                     FLAGS.batch_size, FLAGS.seed)
    cache_dir = default_stats_cache_dir() if FLAGS.stats_cache_dir is None else (FLAGS.stats_cache_dir or None)
    c3d = (FLAGS.c3d_weights, FLAGS.c3d_mean) if (FLAGS.c3d_weights or FLAGS.c3d_mean) else None
    record = evaluate.evaluate_generator(
        FLAGS.export_dir, batches, FLAGS.metrics, num_classes=FLAGS.num_classes, truncation=FLAGS.truncation,
        seed=FLAGS.seed, i3d=FLAGS.i3d, c3d=c3d, stats_cache_dir=cache_dir, dataset_key=dataset_key,
        batch_size=FLAGS.batch_size, progress=FLAGS.progress, strategy=common.make_strategy(FLAGS.strategy),
        truncation_convention=FLAGS.truncation_convention)
    if FLAGS.out:
        evaluate.write_json(FLAGS.out, record)
    return record


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from dvdgan_tf.cli.common import run_reporting_errors  # pylint: disable=import-outside-toplevel
    return run_reporting_errors(
        "dvdgan-eval", lambda: print(json.dumps(evaluate_from_flags(), indent=2, sort_keys=True)))


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
