"""User-facing errors: problems the user can fix. Binaries print their message (no traceback) and exit 2."""


class DvdganError(Exception):
    """Base class; the message names the problem and the fix."""


class ConfigError(DvdganError, ValueError):
    """A bad gin file or binding, or a setting that cannot work."""


class DataError(DvdganError):
    """A dataset that is missing, unreadable or does not match the config."""


def setting_error(name, value, wanted):
    """The ConfigError for gin setting ``name`` (e.g. 'train.num_steps') holding ``value`` instead of ``wanted``
    (e.g. 'an integer >= 1'): one line with the value, its type and the fix."""
    return ConfigError(f"{name} must be {wanted}, got {value!r} ({type(value).__name__}): fix it in the gin file "
                       f"or with --gin_param='{name} = ...'.")
