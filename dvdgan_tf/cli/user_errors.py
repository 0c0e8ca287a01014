"""How every binary reports a user error: one line `<binary>: error: <message>` on stderr, exit status 2, no
traceback (with --verbose, the traceback first). Kept for the binaries' imports; the code is in cli/common.py."""
from dvdgan_tf.cli.common import run_reporting_errors, user_message  # noqa: F401  pylint: disable=unused-import
