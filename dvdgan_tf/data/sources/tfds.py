"""A TFDS video dataset the user has already prepared (e.g. `ucf101` or `bair_robot_pushing_small`).

Read with `tfds.builder(name, data_dir=...)` (`tfds_name` such as `ucf101/ucf101_1_256` or
`bair_robot_pushing_small`, plus the TFDS `data_dir`) or `tfds.builder_from_directory(dataset_dir)` (the
prepared version folder, e.g. `~/tensorflow_datasets/ucf101/ucf101_1_256/2.0.0`), which needs no builder code.
Nothing is downloaded. The video is feature `video` (ucf101) or `image_aux1` (bair_robot_pushing_small's
sequence of steps) unless `video_key` names another; the label is the ClassLabel feature `label` when present,
otherwise every video gets label 0 of one class named after the dataset. Each shard reads one slice of
`videos_per_shard` examples of a split.
"""
import dataclasses
import functools

from dvdgan_tf.data import decode
from dvdgan_tf.data.sources import common as sources
from dvdgan_tf.errors import DataError

VIDEO_KEYS = ("video", "image_aux1")
LABEL_KEY = "label"


@functools.lru_cache(maxsize=4)
def _builder(tfds_name, data_dir, dataset_dir):
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    if dataset_dir:
        if not sources.isfile(sources.join(dataset_dir, "dataset_info.json")):
            raise DataError(f"{dataset_dir} holds no dataset_info.json: --tfds_dir must be a prepared TFDS "
                            "version folder such as ~/tensorflow_datasets/ucf101/ucf101_1_256/2.0.0")
        return tfds.builder_from_directory(dataset_dir)
    try:
        builder = tfds.builder(tfds_name, data_dir=data_dir)
    except Exception as e:  # tfds raises several unrelated types for an unknown or unloadable name
        raise DataError(f"cannot load TFDS dataset {tfds_name!r} from {data_dir}: {e}") from e
    if not builder.is_prepared():
        raise DataError(f"TFDS dataset {builder.info.full_name} is not prepared in {data_dir} (expected "
                        f"{builder.data_dir}); prepare it with TFDS first (downloads are not made here) or "
                        "pass --tfds_dir=<its prepared version folder>")
    return builder


@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """A prepared TFDS dataset: `tfds_name` + `data_dir`, or `dataset_dir` (a prepared version folder)."""
    tfds_name: str | None = None
    data_dir: str | None = None
    dataset_dir: str | None = None
    video_key: str | None = None
    name = "tfds"

    def builder(self):
        """The tfds builder of the prepared dataset (cached per process)."""
        if not (self.tfds_name or self.dataset_dir):
            raise DataError("the tfds source needs --tfds_name (with --tfds_data_dir) or --tfds_dir")
        return _builder(self.tfds_name, sources.absolute(self.data_dir), sources.absolute(self.dataset_dir))

    def settings(self):
        return {"tfds": self.builder().info.full_name, "data_dir": sources.absolute(self.data_dir),
                "dataset_dir": sources.absolute(self.dataset_dir), "video_key": self._video_key()}

    def _video_key(self):
        features = self.builder().info.features
        if self.video_key:
            if self.video_key not in features.keys():
                raise DataError(f"TFDS dataset has no feature {self.video_key!r} (it has {sorted(features.keys())})")
            return self.video_key
        for key in VIDEO_KEYS:
            if key in features.keys():
                return key
        raise DataError(f"no video feature among {sorted(features.keys())}: name it with --tfds_video_key")

    def _label_names(self):
        import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
        features = self.builder().info.features
        if LABEL_KEY in features.keys() and isinstance(features[LABEL_KEY], tfds.features.ClassLabel):
            return list(features[LABEL_KEY].names)
        return None

    def listing(self, videos_per_shard):
        info = self.builder().info
        self._video_key()
        class_names = self._label_names() or [info.name]
        shards = {}
        for split, split_info in sorted(info.splits.items()):
            n = split_info.num_examples
            shards[split] = [[sources.Unit(split, f"{split}[{a}:{min(a + videos_per_shard, n)}]")]
                             for a in range(0, n, videos_per_shard)]
        return sources.Listing(class_names, shards, [])

    def read(self, unit, short_side, max_frames):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        builder, key = self.builder(), self._video_key()
        has_label = self._label_names() is not None
        first = int(unit.key.split("[")[1].split(":")[0])
        examples = iter(builder.as_dataset(split=unit.key, shuffle_files=False).as_numpy_iterator())
        index = first
        while True:
            name = f"{builder.info.full_name}/{unit.split}[{index}]"
            try:
                example = next(examples)
            except StopIteration:
                return
            except tf.errors.OpError as e:
                yield sources.Skip(sources.UNREADABLE, name, f"rest of the slice unreadable: {e}".splitlines()[0])
                return
            frames = example[key][:max_frames] if max_frames else example[key]
            label = int(example[LABEL_KEY]) if has_label else 0
            yield sources.Video(decode.resize_frames(frames, short_side), label, name, 0.0)
            index += 1
