"""What every raw-data reader gives the preparation: a listing of work units grouped into shards, and videos.

A source is a small picklable object (so worker processes can use it) with
- `name`: a short identifier stored in the prepared data's metadata;
- `settings()`: a JSON-able dict of what identifies the input (paths, options), used to detect a resumed run
  with other inputs;
- `listing(videos_per_shard)`: a `Listing` (class names, shards of `Unit`s per split, problems found while
  listing);
- `read(unit, short_side, max_frames)`: an iterator of `Video` and `Skip` for one unit.

Sources look at their inputs only through the path helpers below (`exists`, `isdir`, `isfile`, `listdir`,
`subdirs`, `walk`, `open_text`, `join`, `relative`, `absolute`, `file_checker`): local paths use Python's `os`
functions (names that are not valid UTF-8 come back surrogate-escaped, so they can be reported and skipped),
remote ones (`gs://`, `ram://`, any `scheme://`) use `tf.io.gfile`, so raw inputs may live in a bucket.
"""
import dataclasses
import io
import os

from dvdgan_tf.data import decode
from dvdgan_tf.io import files

VIDEO_EXTENSIONS = (".avi", ".mp4", ".webm", ".mkv", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".ogv")

# Reasons an input is skipped; the summary and skipped.tsv use these words.
UNREADABLE = "unreadable"
TOO_SHORT = "too_short"
UNKNOWN_LABEL = "unknown_label"
MISSING = "missing"
EMPTY_FOLDER = "empty_folder"
UNLABELLED = "unlabelled"
UNDECODABLE_NAME = "undecodable_name"  # a file or folder name that is not valid UTF-8


@dataclasses.dataclass(frozen=True)
class Unit:
    """One piece of work: `key` names it (a file path relative to the source root, or a record range);
    `label` is its class index when the unit is one video of known class, -1 when its records carry labels."""
    split: str
    key: str
    label: int = -1


@dataclasses.dataclass
class Video:
    """One decoded video: frames uint8 [T, H, W, 3] (short side already resized), class index, where it came
    from, frames per second (0.0 when unknown), and a note when decoding stopped early on an error."""
    frames: object
    label: int
    source: str
    fps: float
    note: str | None = None


@dataclasses.dataclass(frozen=True)
class Skip:
    """An input left out: one of the reasons above, the file or record, and details."""
    reason: str
    source: str
    detail: str = ""


@dataclasses.dataclass
class Listing:
    """class_names[i] is class i; shards[split] is a list of shards, each a list of Units, in a fixed order."""
    class_names: list
    shards: dict
    skipped: list = dataclasses.field(default_factory=list)


def is_decodable(name):
    """False for a name that holds bytes that are not valid UTF-8 (Python's os functions return those bytes as
    lone surrogates, the "surrogateescape" form, which cannot be written as UTF-8 text)."""
    try:
        str(name).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(name):
    """`name` as UTF-8-writable text: bytes that are not valid UTF-8 become backslash escapes \\xNN (the file
    name b"bad\\xff.mp4" becomes the text `bad\\xff.mp4`: `os.fsencode` to bytes, then decoded as UTF-8 with
    Python's "backslashreplace"). Valid names are returned unchanged."""
    name = str(name)
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that are not escaped bytes
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def group(units, size):
    """Splits a list into consecutive lists of `size` (the last may be shorter)."""
    return [units[i:i + size] for i in range(0, len(units), size)]


def is_video_file(name):
    """True when the file name has a video extension (case-insensitive)."""
    return name.lower().endswith(VIDEO_EXTENSIONS)


def read_video_file(root, unit, short_side, max_frames):
    """Yields one `Video` for a unit that is a video file under `root` (unit.key is its relative path), or one
    `Skip` when it cannot be decoded."""
    try:
        video = decode.read_video(join(root, unit.key), short_side, max_frames)
    except decode.VideoReadError as e:
        yield Skip(UNREADABLE, unit.key, str(e))
        return
    yield Video(video.frames, unit.label, unit.key, video.fps, video.error)


# Paths: one place that chooses between the local file system (os) and tf.io.gfile (gs://, ram://, ...).

def _gfile():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.io.gfile


def join(root, *parts):
    """`root`/`parts` (os.path.join for local paths, '/' for remote ones)."""
    return os.path.join(root, *parts) if files.is_local(root) else files.join(root, *parts)


def absolute(path):
    """The absolute form of a local path (for settings()); a remote path without trailing '/'; None (or "") as
    it is."""
    if not path:
        return path
    return os.path.abspath(path) if files.is_local(path) else str(path).rstrip("/")


def relative(path, root):
    """`path` relative to its ancestor folder `root`, with '/' separators."""
    if files.is_local(root):
        return os.path.relpath(path, root).replace(os.sep, "/")
    return path[len(root.rstrip("/")) + 1:]


def exists(path):
    return os.path.exists(path) if files.is_local(path) else _gfile().exists(path)


def isdir(path):
    return os.path.isdir(path) if files.is_local(path) else _gfile().isdir(path)


def isfile(path):
    if files.is_local(path):
        return os.path.isfile(path)
    return _gfile().exists(path) and not _gfile().isdir(path)


def listdir(path):
    """Names in folder `path` (unsorted; remote folder names without their trailing '/')."""
    if files.is_local(path):
        return os.listdir(path)
    return [name.rstrip("/") for name in _gfile().listdir(path)]


def _remote_entries(path):
    """(folder names, file names) of remote folder `path`. An object store lists folders with a trailing '/';
    a name with a video extension is taken for a file; only other names cost an isdir request each (a bucket
    holding a million clips is listed with about one request per folder, not one per clip)."""
    dirs, names = [], []
    for name in _gfile().listdir(path):
        if name.endswith("/"):
            dirs.append(name.rstrip("/"))
        elif not is_video_file(name) and _gfile().isdir(files.join(path, name)):
            dirs.append(name)
        else:
            names.append(name)
    return dirs, names


def subdirs(path):
    """Sorted names of the folders in folder `path`."""
    if files.is_local(path):
        return sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    return sorted(_remote_entries(path)[0])


def walk(top):
    """os.walk(top) (top-down; sorting or pruning the yielded folder list in place steers the walk)."""
    if files.is_local(top):
        yield from os.walk(top)
        return
    dirs, names = _remote_entries(top)
    yield top, dirs, names
    for name in dirs:
        yield from walk(files.join(top, name))


def open_text(path, newline=None):
    """`path` opened for reading UTF-8 text, as open(path, encoding="utf-8", newline=newline) does."""
    if files.is_local(path):
        return open(path, encoding="utf-8", newline=newline)  # pylint: disable=consider-using-with
    with _gfile().GFile(path, "rb") as f:
        data = f.read()
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=newline)


def file_checker(root):
    """A function rel -> True when `root`/rel is a file. Local: os.path.isfile each time. Remote: each folder
    is listed once and its entries looked up (one request per folder instead of one per file)."""
    if files.is_local(root):
        return lambda rel: os.path.isfile(os.path.join(root, rel))
    listed = {}

    def is_file(rel):
        folder, _, name = join(root, rel).rpartition("/")
        if folder not in listed:
            listed[folder] = set(_remote_entries(folder)[1]) if _gfile().isdir(folder) else set()
        return name in listed[folder]
    return is_file
