"""Named evaluation protocols: every number is stored with the name of the protocol that produced it.

A name fixes the metric, the network, the sample counts and the clip length; the same names serve during
training and in offline evaluation (as StyleGAN-V's metric registry):

  fvd{N}_{T}f      FVD: N real vs N generated T-frame clips, I3D time-averaged logits (reference FVD). Canonical:
                   fvd2048_16f.
  fid{N}_{T}f      FID on the I3D 1024-d average-pool features (mean over time), N real vs N generated clips.
  is{N}_{T}f       Inception Score of N generated clips from the I3D logits, 10 splits, mean and std.
  isucf{N}x{R}     UCF-101 IS, TGANv2 protocol (DVD-GAN's Table 2): C3D, 16 frames, R runs of N fresh samples,
                   IS of each run as one split, mean and std over runs. Canonical: isucf2048x10.
  isv{N}_ucf       UCF-101 IS, StyleGAN-V protocol: C3D, 16 frames, N samples in 10 splits. Canonical: isv2048_ucf.

FVD and FID grow as the sample count shrinks (small-sample bias): compare numbers only under the same name.
"""
import dataclasses
import hashlib
import json
import re

from dvdgan_tf.errors import ConfigError

CANONICAL = ("fvd2048_16f", "fid2048_16f", "is2048_16f", "isucf2048x10", "isv2048_ucf")
I3D_MIN_FRAMES = 9  # = metrics.i3d.MIN_FRAMES (not imported: this module needs no TensorFlow)
C3D_FRAMES = 16

_PATTERNS = (
    (re.compile(r"^fvd(\d+)_(\d+)f$"), "fvd"),
    (re.compile(r"^fid(\d+)_(\d+)f$"), "fid"),
    (re.compile(r"^is(\d+)_(\d+)f$"), "is"),
    (re.compile(r"^isucf(\d+)x(\d+)$"), "isucf"),
    (re.compile(r"^isv(\d+)_ucf$"), "isv"),
)


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How one metric is computed.

    kind: 'fvd' | 'fid' | 'is' | 'isucf' | 'isv'. network: 'i3d' | 'c3d'. output: 'logits' | 'features'.
    num_samples: generated clips per run (and real clips for FVD / FID). num_runs: independent runs of
    num_samples generated clips (TGANv2's IS). num_splits: IS splits within a run. num_frames: clip length.
    """
    name: str
    kind: str
    network: str
    output: str
    num_samples: int
    num_frames: int
    num_splits: int = 1
    num_runs: int = 1

    @property
    def needs_real(self):
        return self.kind in ("fvd", "fid")

    @property
    def num_generated(self):
        return self.num_samples * self.num_runs

    def describe(self):
        """A JSON-able description stored next to every number."""
        return dataclasses.asdict(self)


def get_protocol(name):
    """The Protocol for a name (see the module docstring); ConfigError for an unknown or impossible name."""
    for pattern, kind in _PATTERNS:
        match = pattern.match(name)
        if not match:
            continue
        a, b = int(match.group(1)), int(match.group(2)) if match.lastindex > 1 else None
        if kind in ("fvd", "fid", "is"):
            if a < 2 or b < 1:
                break
            if b < I3D_MIN_FRAMES:
                raise ConfigError(f"metric {name!r}: the I3D network needs clips of at least {I3D_MIN_FRAMES} "
                                  f"frames, so no FVD, FID or I3D IS exists for {b}-frame clips.")
            output = "features" if kind == "fid" else "logits"
            splits = 10 if kind == "is" else 1
            if kind == "is" and a < splits:
                break
            return Protocol(name, kind, "i3d", output, num_samples=a, num_frames=b, num_splits=splits)
        if kind == "isucf":
            if a < 1 or b < 1:
                break
            return Protocol(name, kind, "c3d", "logits", num_samples=a, num_frames=C3D_FRAMES, num_splits=1,
                            num_runs=b)
        if a < 10:
            break
        return Protocol(name, kind, "c3d", "logits", num_samples=a, num_frames=C3D_FRAMES, num_splits=10)
    raise ConfigError(f"unknown or impossible metric {name!r}. Known forms: fvd<N>_<T>f, fid<N>_<T>f, "
                      f"is<N>_<T>f (N >= 10), isucf<N>x<R>, isv<N>_ucf (N >= 10); canonical: {', '.join(CANONICAL)}.")


def suggested_names(num_frames, num_samples=2048):
    """The metric names (of ``num_samples`` clips) that apply to clips of ``num_frames`` frames: the I3D ones for
    9 frames or more, the C3D UCF-101 IS for exactly 16. Every name returned is accepted by get_protocol."""
    names = []
    if num_frames >= I3D_MIN_FRAMES:
        names += [f"{kind}{num_samples}_{num_frames}f" for kind in ("fvd", "fid", "is")]
    if num_frames == C3D_FRAMES:
        names += [f"isucf{num_samples}x10", f"isv{num_samples}_ucf"]
    return names


def parse_metric_list(names):
    """'fvd2048_16f,is2048_16f' or a list -> list of Protocols (duplicates removed, order kept)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    names = [n for n in dict.fromkeys(names) if n]
    if not names:
        raise ConfigError(f"no metric given; pick from e.g. {', '.join(CANONICAL)}.")
    return [get_protocol(n) for n in names]


def statistics_key(protocol, network_identity, dataset_key):
    """Hex digest naming real-data statistics: the protocol, the exact network and the dataset identity."""
    blob = json.dumps({"protocol": protocol.describe(), "network": network_identity, "dataset": dataset_key,
                       "version": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]
