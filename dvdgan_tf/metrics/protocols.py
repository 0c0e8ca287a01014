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
  fvdpred{N}x{R}_{C}c{T}f
                   FVD of frame-conditional prediction (DVD-GAN-FP; a model with G.context_frames = C): the real
                   clips are the first N T-frame clips of the evaluation data (dvdgan-eval: the test split's fixed
                   windows); the generated clips are the model's continuations of the same N clips' first C frames
                   (T frames including the C context frames, which are the real ones), made R times with fresh z
                   (sampling runs); the FVD of each run against the N real clips, mean and std over the R runs.
                   Run r's z for real clip i is ``truncation.clip_latents``' clip r * 2**32 + i, its label the
                   real clip's (0 where the data has none).
  fvdpred_bair     = fvdpred256x100_1c16f: BAIR robot pushing, 1 context frame and 15 predicted, the 256 test
                   clips, 100 sampling runs.
  fvdpred_k600     = fvdpred50000x1_5c16f: Kinetics-600 at 64x64 (frame stride 1), 5 context frames and 11
                   predicted, 50,000 test clips, 1 run.

FVD and FID grow as the sample count shrinks (small-sample bias): compare numbers only under the same name.

Sources of the prediction protocols. FVD: Unterthiner et al. 2018, arXiv:1812.01717 (I3D logits, Frechet
distance). The rows: DVD-GAN (Clark et al. 2019, arXiv:1907.06571), section "Frame-conditional generation" and
its table of Kinetics-600 (5 -> 11 frames, 64x64, no frame skipping) and BAIR (1 -> 15 frames) FVDs, which it
compares with the Video Transformer (Weissenborn et al. 2020, arXiv:1906.02634) under the Video Transformer's
evaluation: FVD of 16-frame clips, the context included. BAIR: the 256 clips of the test set, conditioned on their
first frame, FVD against those 256 real clips computed for 100 sampling runs and averaged (the 100 x 256
protocol that later BAIR work states when following these rows: FitVid arXiv:2106.13195, as quoted by the RaMViD
authors, arXiv:2206.07696, github.com/Tobi-r9/RaMViD issue 9; iVideoGPT's BAIR evaluation also samples 100 times
per test clip). Kinetics-600: FVD over 50,000 test-set clips and their predictions (the "FVD (50k)" under which
the Kinetics-600 frame-prediction benchmark lists results, e.g. Video Diffusion Models arXiv:2204.03458). These
counts come from secondary sources that state the protocol, not from the primary papers' text, which was not
available here; DVD-GAN's own Kinetics-600 count is not confirmed. The generic form names any other choice.
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
_PREDICTION = re.compile(r"^fvdpred(\d+)x(\d+)_(\d+)c(\d+)f$")
PREDICTION_ALIASES = {"fvdpred_bair": "fvdpred256x100_1c16f", "fvdpred_k600": "fvdpred50000x1_5c16f"}


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
    context_frames: int = 0  # fvdpred: C, the real frames each generated clip starts from

    @property
    def needs_real(self):
        return self.kind in ("fvd", "fid", "fvdpred")

    @property
    def is_prediction(self):
        return self.kind == "fvdpred"

    @property
    def num_generated(self):
        return self.num_samples * self.num_runs

    def describe(self):
        """A JSON-able description stored next to every number (and hashed into the real-statistics key; the
        synthesis protocols' descriptions are as before the prediction ones existed)."""
        description = dataclasses.asdict(self)
        if not self.is_prediction:
            del description["context_frames"]
        return description


def get_protocol(name):
    """The Protocol for a name (see the module docstring); ConfigError for an unknown or impossible name."""
    if name.startswith("fvdpred"):
        return _prediction_protocol(name)
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
                      f"is<N>_<T>f (N >= 10), isucf<N>x<R>, isv<N>_ucf (N >= 10), fvdpred<N>x<R>_<C>c<T>f; "
                      f"canonical: {', '.join(CANONICAL)}; prediction: {', '.join(PREDICTION_ALIASES)}.")


def _prediction_protocol(name):
    match = _PREDICTION.match(PREDICTION_ALIASES.get(name, name))
    if match:
        n, runs, context, frames = (int(g) for g in match.groups())
        if n >= 2 and runs >= 1 and 1 <= context < frames:
            if frames < I3D_MIN_FRAMES:
                raise ConfigError(f"metric {name!r}: the I3D network needs clips of at least {I3D_MIN_FRAMES} "
                                  f"frames (context included), so no prediction FVD exists for {frames}-frame clips.")
            return Protocol(name, "fvdpred", "i3d", "logits", num_samples=n, num_frames=frames, num_runs=runs,
                            context_frames=context)
    raise ConfigError(f"unknown or impossible metric {name!r} (a prediction FVD): use {', '.join(PREDICTION_ALIASES)} or "
                      f"fvdpred<N>x<R>_<C>c<T>f (N >= 2 real clips, R >= 1 sampling runs, 1 <= C < T context "
                      f"frames, T >= {I3D_MIN_FRAMES} frames), e.g. fvdpred256x100_1c16f.")


def suggested_prediction_names(context_frames, num_frames):
    """The prediction metric names that apply to a model with ``context_frames`` of ``num_frames`` frames."""
    names = [alias for alias, full in PREDICTION_ALIASES.items()
             if (get_protocol(full).context_frames, get_protocol(full).num_frames) == (context_frames, num_frames)]
    if num_frames >= I3D_MIN_FRAMES and 0 < context_frames < num_frames:
        names.append(f"fvdpred256x1_{context_frames}c{num_frames}f")
    return names


def default_real_split(names):
    """dvdgan-eval's default real data for these metrics: 'eval' (the evaluation split's fixed windows) when
    they include a prediction protocol, whose numbers in the literature are test-set numbers, else 'train' (the
    paper's real statistics of synthesis come from the training set)."""
    return "eval" if any(p.is_prediction for p in parse_metric_list(names)) else "train"


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
