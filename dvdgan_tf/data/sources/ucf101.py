"""UCF-101 as released: the .avi files in class folders plus the official split lists.

Expected layout (the contents of UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip):

    VIDEO_DIR/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi ...        (101 class folders)
    SPLITS_DIR/classInd.txt         "1 ApplyEyeMakeup" ... "101 YoYo"
    SPLITS_DIR/trainlist0N.txt      "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    SPLITS_DIR/testlist0N.txt       "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"

Labels are classInd's 1-based indices minus one (0..100), taken from each listed file's class folder.
Official split N (1, 2 or 3) gives the prepared splits `train` and `test`. Both folders may be remote (gs://).
"""
import dataclasses
import os

from dvdgan_tf.data.sources import common as sources
from dvdgan_tf.errors import DataError

CLASS_INDEX = "classInd.txt"


def read_class_ind(path):
    """Class names from a classInd.txt ("1 ApplyEyeMakeup" lines, 1-based); names[label] for labels 0..N-1."""
    names = {}
    with sources.open_text(path) as f:
        for line_no, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[0].isdigit():
                raise DataError(f"{path}, line {line_no}: expected '<index> <ClassName>', got {line.strip()!r}")
            names[int(parts[0])] = parts[1]
    if sorted(names) != list(range(1, len(names) + 1)):
        raise DataError(f"{path}: class indices must be 1..N without gaps")
    return [names[i] for i in range(1, len(names) + 1)]


def read_split_list(path):
    """Relative video paths listed in a trainlist0N.txt / testlist0N.txt (the optional label column ignored)."""
    with sources.open_text(path) as f:
        return [line.split()[0].replace("\\", "/") for line in f if line.strip()]


@dataclasses.dataclass(frozen=True)
class UCF101Source:
    """UCF-101 videos under `video_dir` with the split lists of `splits_dir`, official split `split_index`."""
    video_dir: str
    splits_dir: str
    split_index: int = 1
    name = "ucf101"

    def settings(self):
        return {"video_dir": sources.absolute(self.video_dir), "splits_dir": sources.absolute(self.splits_dir),
                "split_index": self.split_index}

    def _require(self, path, what):
        if not sources.exists(path):
            raise DataError(f"{path} not found: {what}. UCF-101 needs --video_dir=<the UCF-101 folder holding "
                            "the 101 class folders of .avi files> and --splits_dir=<the ucfTrainTestlist folder "
                            "holding classInd.txt, trainlist0N.txt and testlist0N.txt>")

    def listing(self, videos_per_shard):
        if self.split_index not in (1, 2, 3):
            raise DataError(f"UCF-101 has official splits 1, 2 and 3, not {self.split_index}")
        self._require(self.video_dir, "the UCF-101 video folder")
        class_ind = sources.join(self.splits_dir, CLASS_INDEX)
        self._require(class_ind, "the UCF-101 class index")
        class_names = read_class_ind(class_ind)
        label_of = {name: i for i, name in enumerate(class_names)}
        skipped = [sources.Skip(sources.EMPTY_FOLDER, name, "class folder missing or holds no video")
                   for name in class_names if not self._has_videos(name)]
        shards, is_file = {}, sources.file_checker(self.video_dir)
        for split, prefix in (("train", "trainlist"), ("test", "testlist")):
            list_path = sources.join(self.splits_dir, f"{prefix}{self.split_index:02d}.txt")
            self._require(list_path, f"the UCF-101 {split} list of split {self.split_index}")
            units = []
            for rel in read_split_list(list_path):
                class_name = rel.split("/")[0]
                if class_name not in label_of:
                    skipped.append(sources.Skip(sources.UNKNOWN_LABEL, rel, f"class {class_name!r} is not in "
                                                f"{CLASS_INDEX}"))
                elif not is_file(rel):
                    skipped.append(sources.Skip(sources.MISSING, rel, f"listed in {os.path.basename(list_path)}"))
                else:
                    units.append(sources.Unit(split, rel, label_of[class_name]))
            shards[split] = sources.group(units, videos_per_shard)
        return sources.Listing(class_names, shards, skipped)

    def _has_videos(self, class_name):
        folder = sources.join(self.video_dir, class_name)
        return sources.isdir(folder) and any(sources.is_video_file(n) for n in sources.listdir(folder))

    def read(self, unit, short_side, max_frames):
        return sources.read_video_file(self.video_dir, unit, short_side, max_frames)
