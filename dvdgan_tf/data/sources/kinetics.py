"""Kinetics-600 as released (annotation CSVs plus downloaded clips) and the plain class-folder layout.

With annotations (`annotations_dir` holding the release's CSVs, e.g. train.csv, validate.csv, test.csv, with
the header `label,youtube_id,time_start,time_end,split`): each row is looked up among the video files anywhere
under `video_dir` by file name `<youtube_id>_<time_start:06d>_<time_end:06d>.<ext>` (the official downloader's
naming) or `<youtube_id>.<ext>`. Classes are the sorted labels of the `train` rows (600 for Kinetics-600); the
prepared splits are the CSVs' `split` column values (`train`, `val`, `test`; from the file name when the column
is absent). Rows without a label (the test set) are skipped as unlabelled.

Without annotations, the class-folder layout: `video_dir/<class>/<video>`, or with splits
`video_dir/<split>/<class>/<video>` when every folder in `video_dir` is a split name (train, val, validation,
valid, test). Classes are the sorted class folders of `train` (of all splits when there is no train).

The clips and CSVs may be remote (gs://).
"""
import csv
import dataclasses
import os
import re

from dvdgan_tf.data.sources import common as sources
from dvdgan_tf.errors import DataError

SPLIT_NAMES = ("train", "val", "validation", "valid", "validate", "test")
CSV_SPLITS = {"validate": "val", "validation": "val", "valid": "val"}


def _split_name(name):
    name = re.sub(r"[^a-z0-9_]", "_", name.strip().lower())
    return CSV_SPLITS.get(name, name)


def _index_video_files(video_dir):
    """Maps each video file's name without extension to its path relative to `video_dir` (first in sorted
    walk order when a name repeats)."""
    index = {}
    for root, dirs, files in sources.walk(video_dir):
        dirs.sort()
        for name in sorted(files):
            if sources.is_video_file(name):
                index.setdefault(os.path.splitext(name)[0], sources.relative(sources.join(root, name), video_dir))
    return index


def read_annotations(annotations_dir):
    """Rows (dicts with label, youtube_id, time_start, time_end, split) of every CSV in `annotations_dir`, in
    file-name order; `split` defaults to the CSV's file name (train.csv -> train)."""
    paths = sorted(p for p in sources.listdir(annotations_dir) if p.lower().endswith(".csv"))
    if not paths:
        raise DataError(f"no .csv annotation file in {annotations_dir}: Kinetics-600 needs the release's "
                        "train.csv / validate.csv (header label,youtube_id,time_start,time_end,split)")
    rows = []
    for path in paths:
        default_split = _split_name(os.path.splitext(path)[0].split("_")[-1])
        with sources.open_text(sources.join(annotations_dir, path), newline="") as f:
            reader = csv.DictReader(f)
            missing = {"youtube_id", "time_start", "time_end"} - set(reader.fieldnames or ())
            if missing:
                raise DataError(f"{path}: missing column(s) {sorted(missing)}; expected the header "
                                "label,youtube_id,time_start,time_end,split")
            for row in reader:
                row = {k: (v or "").strip() for k, v in row.items() if k}
                row["split"] = _split_name(row.get("split") or default_split)
                rows.append(row)
    return rows


def _clip_names(row):
    try:
        start, end = int(float(row["time_start"])), int(float(row["time_end"]))
    except ValueError:
        return [row["youtube_id"]]
    return [f"{row['youtube_id']}_{start:06d}_{end:06d}", row["youtube_id"]]


@dataclasses.dataclass(frozen=True)
class KineticsSource:
    """Kinetics clips under `video_dir`, labelled by the CSVs of `annotations_dir`, or by class folders when
    `annotations_dir` is None."""
    video_dir: str
    annotations_dir: str | None = None
    name = "kinetics600"

    def settings(self):
        return {"video_dir": sources.absolute(self.video_dir),
                "annotations_dir": sources.absolute(self.annotations_dir)}

    def listing(self, videos_per_shard):
        if not sources.isdir(self.video_dir):
            raise DataError(f"{self.video_dir} not found: --video_dir must be the folder holding the downloaded "
                            "Kinetics clips")
        if self.annotations_dir is None:
            return class_folder_listing(self.video_dir, videos_per_shard)
        if not sources.isdir(self.annotations_dir):
            raise DataError(f"{self.annotations_dir} not found: --annotations_dir must hold the Kinetics-600 "
                            "CSVs (train.csv, validate.csv, test.csv)")
        return self._csv_listing(videos_per_shard)

    def _csv_listing(self, videos_per_shard):
        rows = read_annotations(self.annotations_dir)
        train_labels = {r["label"] for r in rows if r["split"] == "train" and r.get("label")}
        class_names = sorted(train_labels or {r["label"] for r in rows if r.get("label")})
        label_of = {name: i for i, name in enumerate(class_names)}
        files = _index_video_files(self.video_dir)
        units, skipped = {}, []
        for row in rows:
            names = _clip_names(row)
            path = next((files[n] for n in names if n in files), None)
            if not row.get("label"):
                skipped.append(sources.Skip(sources.UNLABELLED, names[0], f"{row['split']} row has no label"))
            elif row["label"] not in label_of:
                skipped.append(sources.Skip(sources.UNKNOWN_LABEL, names[0], f"label {row['label']!r} is not a "
                                            "train class"))
            elif path is None:
                skipped.append(sources.Skip(sources.MISSING, names[0], "no video file with this name under "
                                            "--video_dir"))
            else:
                units.setdefault(row["split"], []).append(sources.Unit(row["split"], path, label_of[row["label"]]))
        shards = {split: sources.group(u, videos_per_shard) for split, u in units.items()}
        return sources.Listing(class_names, shards, skipped)

    def read(self, unit, short_side, max_frames):
        return sources.read_video_file(self.video_dir, unit, short_side, max_frames)


def class_folder_listing(video_dir, videos_per_shard):
    """Listing of `video_dir/<class>/<video>` (split `train`) or `video_dir/<split>/<class>/<video>`."""
    top = sources.subdirs(video_dir)
    if not top:
        raise DataError(f"{video_dir} holds no class folders: expected {video_dir}/<class>/<video> or "
                        f"{video_dir}/<split>/<class>/<video>")
    if all(d.lower() in SPLIT_NAMES for d in top):
        split_dirs = {_split_name(d): sources.join(video_dir, d) for d in top}
    else:
        split_dirs = {"train": video_dir}
    classes_of = {split: sources.subdirs(path) for split, path in split_dirs.items()}
    skipped = []
    for split, path in split_dirs.items():  # a class name must be writable to classes.txt
        for class_name in [c for c in classes_of[split] if not sources.is_decodable(c)]:
            rel_dir = sources.relative(sources.join(path, class_name), video_dir)
            skipped.append(sources.Skip(sources.UNDECODABLE_NAME, sources.printable(rel_dir),
                                        "class folder name is not valid UTF-8: its videos are left out (rename it)"))
            classes_of[split].remove(class_name)
    class_names = classes_of.get("train") or sorted({c for cs in classes_of.values() for c in cs})
    label_of = {name: i for i, name in enumerate(class_names)}
    shards = {}
    for split, path in split_dirs.items():
        units = []
        for class_name in classes_of[split]:
            rel_dir = sources.relative(sources.join(path, class_name), video_dir)
            videos = sorted(n for n in sources.listdir(sources.join(path, class_name)) if sources.is_video_file(n))
            if not videos:
                skipped.append(sources.Skip(sources.EMPTY_FOLDER, rel_dir, "holds no video file"))
            for name in videos:
                if class_name in label_of:
                    units.append(sources.Unit(split, f"{rel_dir}/{name}", label_of[class_name]))
                else:
                    skipped.append(sources.Skip(sources.UNKNOWN_LABEL, f"{rel_dir}/{name}",
                                                f"class folder {class_name!r} is not a train class"))
        shards[split] = sources.group(units, videos_per_shard)
    return sources.Listing(class_names, shards, skipped)
