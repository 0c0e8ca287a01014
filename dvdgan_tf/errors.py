"""User-facing errors: problems the user can fix. Binaries print their message (no traceback) and exit 2."""


class DvdganError(Exception):
    """Base class; the message names the problem and the fix."""


class ConfigError(DvdganError, ValueError):
    """A bad gin file or binding, or a setting that cannot work."""


class DataError(DvdganError):
    """A dataset that is missing, unreadable or does not match the config."""
