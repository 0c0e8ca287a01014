"""Every file and folder the project writes goes through here, so that local paths, ``gs://`` and TensorFlow's
``ram://`` behave the same and nothing is ever seen half-written.

- ``write_bytes`` / ``write_text``: the content goes to a hidden temporary sibling, then is renamed over the
  final name (atomic on POSIX file systems and, per object, on GCS).
- ``publish_dir``: a folder (a SavedModel, a prepared shard set) is built in a hidden temporary sibling and
  renamed into place when complete; on any error the temporary folder is removed.
- ``append_line``: a line appended to a log-like file (``metrics.jsonl``).
- Local files and folders get the permissions the user's umask gives new files (0o666 / 0o777 & ~umask), as
  ``open()`` and ``mkdir`` would, not the 0o600 / 0o700 of Python's ``tempfile``.
- ``remove_leftovers``: deletes what a killed writer left behind (our temporaries, TensorFlow's ``*_temp``
  checkpoint folders).
- ``cache_root``: ``$DVDGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/dvdgan_tf``, else ``~/.cache/dvdgan_tf``.
- Write failures (disk full, permission denied, ...) become ``StorageError``: one line naming the path, the
  reason and, for a full disk, the free space there and roughly what is needed.
"""
import contextlib
import errno
import os
import shutil
import uuid

import tensorflow as tf

from dvdgan_tf.errors import DvdganError

TMP_MARK = ".tmp-"  # hidden temporaries are named .<final name>.tmp-<random>


class StorageError(DvdganError, OSError):
    """A file or folder could not be written (disk full, no permission, ...). Nothing partial is left."""


def cache_root():
    """The folder for downloaded weights and cached statistics (see the module docstring)."""
    if os.environ.get("DVDGAN_CACHE_DIR"):
        return os.path.expanduser(os.environ["DVDGAN_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(os.path.expanduser(xdg), "dvdgan_tf")


def is_local(path):
    """True for paths of the local file system (no ``scheme://``)."""
    return "://" not in str(path)


def join(*parts):
    return os.path.join(*parts) if is_local(parts[0]) else "/".join(p.rstrip("/") for p in parts)


def _umask():
    """The process's umask. Read from /proc on Linux: os.umask can only read it by setting it, which for a moment
    would give files that other threads (TensorFlow's) create the umask 0."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _apply_umask(path, is_dir):
    if is_local(path):
        os.chmod(path, (0o777 if is_dir else 0o666) & ~_umask())


def free_bytes(path):
    """Free bytes on the local file system holding ``path`` (its nearest existing ancestor); None if remote."""
    if not is_local(path):
        return None
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return shutil.disk_usage(path).free


def _human(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def is_disk_full(error):
    """True for an error that means the file system is out of space (Python or TensorFlow)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(error, tf.errors.ResourceExhaustedError) or "No space left on device" in str(error)


def storage_error(path, error, needed_bytes=None):
    """The StorageError to raise for a failed write of ``path`` (``needed_bytes``: the size being written)."""
    if is_disk_full(error):
        free = free_bytes(path)
        need = f"; about {_human(needed_bytes)} is needed" if needed_bytes else ""
        where = f" ({_human(free)} free there{need})" if free is not None else need
        return StorageError(f"cannot write {path}: the disk is full{where}. Free space or choose another "
                            f"folder, then re-run the same command.")
    reason = getattr(error, "strerror", None) or getattr(error, "message", None) or str(error)
    reason = (str(reason).strip().splitlines() or [type(error).__name__])[0]
    return StorageError(f"cannot write {path}: {reason}.")


def makedirs(path):
    """Creates ``path`` and its parents (local ones with umask permissions); returns ``path``."""
    try:
        tf.io.gfile.makedirs(path)
    except (OSError, tf.errors.OpError) as e:
        raise storage_error(path, e) from e
    return path


def _tmp_sibling(path):
    path = path.rstrip("/")
    return join(parent(path), f".{path.rsplit('/', 1)[-1]}{TMP_MARK}{uuid.uuid4().hex[:12]}")


def parent(path):
    """The folder holding ``path`` (local or remote)."""
    return os.path.dirname(path) if is_local(path) else path.rstrip("/").rsplit("/", 1)[0]


@contextlib.contextmanager
def _removed_on_error(tmp, final, needed_bytes):
    """Deletes the temporary ``tmp`` if the block fails; write errors become StorageError naming ``final``."""
    try:
        yield
    except (OSError, tf.errors.OpError) as e:
        _remove(tmp)
        if isinstance(e, StorageError):
            raise
        raise storage_error(final, e, needed_bytes) from e
    except BaseException:
        _remove(tmp)
        raise


def _remove(path):
    try:
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        elif tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
    except (OSError, tf.errors.OpError):
        pass


def write_bytes(path, data):
    """Writes ``data`` (bytes) to ``path`` atomically: readers see the old file or the whole new one."""
    with atomic_path(path, needed_bytes=len(data)) as tmp:
        with tf.io.gfile.GFile(tmp, "wb") as f:
            f.write(data)
    return path


def write_text(path, text):
    """``write_bytes`` of ``text`` encoded as UTF-8."""
    return write_bytes(path, text.encode("utf-8"))


def read_text(path):
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read().decode("utf-8")


def append_line(path, line):
    """Appends ``line`` (a newline is added) to ``path``. Local files are appended in place; remote ones (no
    append on object stores) are rewritten atomically with the line added."""
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    try:
        if is_local(path):
            makedirs(os.path.dirname(os.path.abspath(path)))
            new = not os.path.exists(path)
            with open(path, "ab") as f:
                f.write(data)
            if new:
                _apply_umask(path, is_dir=False)
            return path
        old = b""
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path, "rb") as f:
                old = f.read()
        return write_bytes(path, old + data)
    except (OSError, tf.errors.OpError) as e:
        if isinstance(e, StorageError):
            raise
        raise storage_error(path, e, len(data)) from e


def _move_tree(src, dst):
    """Moves folder ``src`` to ``dst`` file by file (object stores and ram:// have no folder rename)."""
    for folder, _, names in tf.io.gfile.walk(src):
        target = dst + folder[len(src):]
        tf.io.gfile.makedirs(target)
        for name in names:
            tf.io.gfile.rename(join(folder, name), join(target, name), overwrite=True)
    _remove(src)


def _publish(tmp, final):
    """Renames folder ``tmp`` to ``final``; an existing ``final`` is moved aside first and deleted after.

    Local file systems rename a folder atomically. Remote ones (gs://, ram://) move it file by file, so there a
    reader may see the new folder incomplete for the moment of the move."""
    move = tf.io.gfile.rename if is_local(final) else _move_tree
    if not tf.io.gfile.exists(final):
        move(tmp, final)
        return
    old = _tmp_sibling(final)
    move(final, old)
    move(tmp, final)
    _remove(old)


def _chmod_tree(folder):
    if not is_local(folder):
        return
    _apply_umask(folder, is_dir=True)
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            _apply_umask(os.path.join(root, d), is_dir=True)
        for f in files:
            _apply_umask(os.path.join(root, f), is_dir=False)


@contextlib.contextmanager
def publish_dir(final, needed_bytes=None):
    """Yields a temporary folder beside ``final`` to fill; on normal exit it replaces ``final`` whole (local
    files get umask permissions), on an error it is deleted and ``final`` is untouched. Write errors inside
    become StorageError naming ``final``."""
    final = os.path.abspath(final) if is_local(final) else final.rstrip("/")
    makedirs(parent(final))
    tmp = _tmp_sibling(final)
    makedirs(tmp)
    with _removed_on_error(tmp, final, needed_bytes):
        yield tmp
        _chmod_tree(tmp)
        _publish(tmp, final)


def remove_leftovers(folder, also_suffixes=("_temp",)):
    """Deletes what interrupted writers left in ``folder`` (not recursive): our hidden ``.<name>.tmp-*``
    temporaries and entries ending in ``also_suffixes`` (TensorFlow's ``ckpt-N_temp`` checkpoint folders).
    Returns the names removed."""
    if not tf.io.gfile.isdir(folder):
        return []
    removed = []
    for name in tf.io.gfile.listdir(folder):
        name = name.rstrip("/")
        if (name.startswith(".") and TMP_MARK in name) or any(name.endswith(s) for s in also_suffixes):
            _remove(join(folder, name))
            removed.append(name)
    return removed


@contextlib.contextmanager
def atomic_path(final, needed_bytes=None):
    """Yields a hidden temporary path beside the file ``final`` for a writer that needs a file name (e.g.
    ``tf.io.TFRecordWriter``); on normal exit the file gets umask permissions and is renamed over ``final``, on
    an error it is deleted and ``final`` is untouched. Write errors become StorageError naming ``final``. The
    one place where the temporary-then-rename write of a file is done (``write_bytes`` uses it)."""
    if parent(final):
        makedirs(parent(final))
    tmp = _tmp_sibling(final)
    with _removed_on_error(tmp, final, needed_bytes):
        yield tmp
        _apply_umask(tmp, is_dir=False)
        tf.io.gfile.rename(tmp, final, overwrite=True)


def create_exclusive(path, text):
    """Creates the file ``path`` holding ``text`` unless it exists; returns False if it does. Atomic on local
    file systems (O_EXCL); on remote ones (no exclusive create) an existence check then a write, so two
    writers racing within that moment can both succeed. A failed write leaves no file."""
    if not is_local(path):
        if tf.io.gfile.exists(path):
            return False
        write_text(path, text)
        return True
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        os.unlink(path)
        raise storage_error(path, e, len(text)) from e
    return True


def remove(path):
    """Deletes the file or folder ``path`` if it exists (best effort: errors are ignored)."""
    _remove(path)
