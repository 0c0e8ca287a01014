"""What every raw-data reader gives the preparation: a listing of work units grouped into shards, and videos.

A source is a small picklable object (so worker processes can use it) with
- `name`: a short identifier stored in the prepared data's metadata;
- `settings()`: a JSON-able dict of what identifies the input (paths, options), used to detect a resumed run
  with other inputs;
- `listing(videos_per_shard)`: a `Listing` (class names, shards of `Unit`s per split, problems found while
  listing);
- `read(unit, short_side, max_frames)`: an iterator of `Video` and `Skip` for one unit.
"""
import dataclasses
import os

from dvdgan_tf.data import decode

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
        video = decode.read_video(os.path.join(root, unit.key), short_side, max_frames)
    except decode.VideoReadError as e:
        yield Skip(UNREADABLE, unit.key, str(e))
        return
    yield Video(video.frames, unit.label, unit.key, video.fps, video.error)
