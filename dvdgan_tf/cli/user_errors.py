"""How every binary reports a user error: one line `<binary>: error: <message>` on stderr, exit status 2, no
traceback. Imports no TensorFlow, so binaries can check their flags before the slow import."""
import sys

from dvdgan_tf.errors import DvdganError


def user_message(error):
    """The error's message without the "In call to configurable ..." lines gin appends."""
    lines = str(error).splitlines()
    return "\n".join(line for line in lines if not line.strip().startswith("In call to configurable"))


def run_reporting_errors(binary, body, also=()):
    """Runs ``body()``; returns 0, or 2 after printing a DvdganError (or an error of a type in ``also``)."""
    try:
        body()
    except (DvdganError, *also) as e:  # pylint: disable=catching-non-exception
        print(f"{binary}: error: {user_message(e)}", file=sys.stderr)
        return 2
    return 0
