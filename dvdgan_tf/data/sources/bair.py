"""BAIR robot pushing (Ebert et al. 2017, "softmotion30_44k") from its original TFRecords.

Expected layout (the contents of bair_robot_pushing_dataset_v0.tar):

    VIDEO_DIR/train/traj_0_to_255.tfrecords ...
    VIDEO_DIR/test/traj_0_to_255.tfrecords ...

Each record is one 30-step trajectory; step i's camera image is the raw 64x64x3 uint8 string of feature
`{i}/{view}/encoded`. The view is `image_aux1` by default (the one tensor2tensor's and TFDS's
bair_robot_pushing_small readers use for video prediction); `image_main` is the other camera. BAIR has no
classes: every video gets label 0 of the single class `robot_pushing`. One input file becomes one shard. The
folder may be remote (gs://).
"""
import dataclasses
import math

import numpy as np
from google.protobuf.message import DecodeError

from dvdgan_tf.data import decode
from dvdgan_tf.data.sources import common as sources
from dvdgan_tf.errors import DataError

CLASS_NAME = "robot_pushing"


def example_frames(example, view):
    """uint8 frames [T, S, S, 3] of a parsed trajectory `tf.train.Example` for camera `view`; None if absent."""
    feature = example.features.feature
    frames = []
    while f"{len(frames)}/{view}/encoded" in feature:
        raw = feature[f"{len(frames)}/{view}/encoded"].bytes_list.value[0]
        side = math.isqrt(len(raw) // 3)
        if side * side * 3 != len(raw):
            raise ValueError(f"step {len(frames)}: {len(raw)} bytes is not a square RGB image")
        frames.append(np.frombuffer(raw, dtype=np.uint8).reshape(side, side, 3))
    return np.stack(frames) if frames else None


@dataclasses.dataclass(frozen=True)
class BairSource:
    """The BAIR TFRecords under `video_dir`/{train,test}, camera `view`."""
    video_dir: str
    view: str = "image_aux1"
    name = "bair"

    def settings(self):
        return {"video_dir": sources.absolute(self.video_dir), "view": self.view}

    def listing(self, videos_per_shard):
        del videos_per_shard  # one input file (256 trajectories) per shard
        shards = {}
        for split in ("train", "test"):
            folder = sources.join(self.video_dir, split)
            if sources.isdir(folder):
                files = sorted(f for f in sources.listdir(folder) if f.endswith((".tfrecords", ".tfrecord")))
                shards[split] = [[sources.Unit(split, f"{split}/{f}", 0)] for f in files]
        if not any(shards.values()):
            raise DataError(f"no .tfrecords files in {self.video_dir}/train or {self.video_dir}/test: "
                            "--video_dir must be the softmotion30_44k folder of bair_robot_pushing_dataset_v0.tar")
        return sources.Listing([CLASS_NAME], shards, [])

    def read(self, unit, short_side, max_frames):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        records = iter(tf.data.TFRecordDataset(sources.join(self.video_dir, unit.key)).as_numpy_iterator())
        index = 0
        while True:
            name = f"{unit.key}#{index}"
            try:
                record = next(records)
            except StopIteration:
                return
            except (tf.errors.OpError, OSError) as e:
                yield sources.Skip(sources.UNREADABLE, name, f"rest of the file unreadable: {e}".splitlines()[0])
                return
            try:
                frames = example_frames(tf.train.Example.FromString(record), self.view)
            except (ValueError, DecodeError) as e:  # a malformed record is skipped, not fatal
                yield sources.Skip(sources.UNREADABLE, name, str(e))
            else:
                if frames is None:
                    yield sources.Skip(sources.UNREADABLE, name, f"no '{{i}}/{self.view}/encoded' features")
                else:
                    frames = frames[:max_frames] if max_frames else frames
                    yield sources.Video(decode.resize_frames(frames, short_side), 0, name, 0.0)
            index += 1
