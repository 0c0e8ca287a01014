"""FVD (Unterthiner et al. 2018) as the reference code computes it, and the cache of real-data statistics.

FVD: videos -> TF1 bilinear resize of every frame to 224 x 224 -> [-1, 1] -> I3D (Kinetics-400) time-averaged
logits -> Frechet distance of Gaussians fitted in float64 with the unbiased covariance. FID here is the same
distance on the I3D average-pool features. Activations are reduced to streaming moments as they come, so memory
does not grow with the number of clips.

Real-data statistics are cached as ``<cache_dir>/<protocol name>-<key>.npz`` where key hashes the protocol, the
exact network and a caller-supplied dataset identity (``protocols.statistics_key``); the npz also stores that
description as JSON, for inspection.
"""
import io
import json

import numpy as np
import tensorflow as tf

from dvdgan_tf.errors import DataError
from dvdgan_tf.io import files
from dvdgan_tf.metrics import frechet
from dvdgan_tf.metrics import protocols as protocols_lib


def fvd_from_videos(videos1, videos2, classifier):
    """FVD between two small in-memory sets of videos (uint8 or [-1, 1], [N, T, H, W, 3], N >= 2 each).

    classifier: a ``classifiers.VideoClassifier`` (e.g. ``classifiers.load_i3d()``). No sample count is
    imposed: use a protocol (``evaluate.compute_metrics``) for numbers meant to be compared.
    """
    for name, videos in (("first", videos1), ("second", videos2)):
        if len(videos) < 2:
            raise DataError(f"FVD needs at least 2 videos per set; the {name} set has {len(videos)}.")
    acts = [classifier.outputs(v)["logits"] for v in (videos1, videos2)]
    return frechet.frechet_distance_from_activations(*acts)


class StatisticsCache:
    """Real-data moments on disk, one npz per (protocol, network, dataset). ``cache_dir=None`` disables it."""

    def __init__(self, cache_dir):
        self.cache_dir = cache_dir

    def path(self, protocol, network_identity, dataset_key):
        key = protocols_lib.statistics_key(protocol, network_identity, dataset_key)
        return files.join(self.cache_dir, f"{protocol.name}-{key}.npz")

    def load(self, protocol, network_identity, dataset_key):
        """The cached RunningMoments, or None when absent (or caching is off / dataset_key is None)."""
        if self.cache_dir is None or dataset_key is None:
            return None
        path = self.path(protocol, network_identity, dataset_key)
        if not tf.io.gfile.exists(path):
            return None
        try:
            with tf.io.gfile.GFile(path, "rb") as f:
                data = io.BytesIO(f.read())
            with np.load(data, allow_pickle=False) as f:
                moments = frechet.RunningMoments.from_state({k: f[k] for k in ("count", "mean", "m2")})
        except (OSError, ValueError, KeyError, tf.errors.OpError) as e:
            raise DataError(f"cached real statistics {path} are unreadable ({e}); delete the file.") from e
        if moments.count != protocol.num_samples:
            raise DataError(f"cached real statistics {path} hold {moments.count} clips, {protocol.name} needs "
                            f"{protocol.num_samples}; delete the file.")
        return moments

    def save(self, protocol, network_identity, dataset_key, moments):
        """Writes moments atomically (``files.write_bytes``). No-op when caching is off."""
        if self.cache_dir is None or dataset_key is None:
            return None
        path = self.path(protocol, network_identity, dataset_key)
        about = json.dumps({"protocol": protocol.describe(), "network": network_identity, "dataset": dataset_key})
        buffer = io.BytesIO()
        np.savez(buffer, about=np.asarray(about), **moments.state())
        return files.write_bytes(path, buffer.getvalue())
