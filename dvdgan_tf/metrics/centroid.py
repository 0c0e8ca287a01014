"""Demo evidence for frame-conditional prediction: does the predicted object follow the true continuation?

On the embedded moving shapes (one shape on a black background, ``data/synthetic.py``), the renderer knows the
shape's true centre in every frame. For a predicted clip the centre is estimated from the pixels
(``pixel_centroids``: the intensity-weighted centroid of the pixels brighter than the background), and the error
of a predicted frame is the distance between that estimate and the true centre of the real continuation, in
pixels. The baseline predicts "nothing moves": it repeats the last context frame, so its error per frame is the
distance between the estimated centre of the last context frame and the true centre of each later frame.
"""
import numpy as np

THRESHOLD = 0.1  # brightness (0 background .. 1 full intensity) a pixel must exceed to count as the object


def pixel_centroids(frames, threshold=THRESHOLD):
    """Intensity-weighted centroids of the object in frames on a black background.

    Args:
      frames: [..., H, W, 3] float in [-1, 1] (-1 is the background).
      threshold: a pixel's brightness b = (max over RGB + 1) / 2 in [0, 1] counts with weight max(b - threshold,
        0), so faint noise away from the object barely moves the estimate.
    Returns:
      float64 [..., 2]: (y, x) in frame widths (pixel centres at (i + 0.5) / H); a frame with no pixel above the
      threshold gets the frame centre (0.5, 0.5).
    """
    frames = np.asarray(frames, np.float64)
    height, width = frames.shape[-3:-1]
    weight = np.maximum((frames.max(axis=-1) + 1.0) / 2.0 - threshold, 0.0)  # [..., H, W]
    total = weight.sum(axis=(-2, -1))
    ys = (np.arange(height) + 0.5) / height
    xs = (np.arange(width) + 0.5) / width
    safe = np.where(total > 0, total, 1.0)
    cy = (weight.sum(axis=-1) * ys).sum(axis=-1) / safe
    cx = (weight.sum(axis=-2) * xs).sum(axis=-1) / safe
    return np.stack([np.where(total > 0, cy, 0.5), np.where(total > 0, cx, 0.5)], axis=-1)


def prediction_errors(predicted, true_centres, context_frames):
    """Per predicted frame, the mean centroid error of the prediction and of the repeat-the-last-context-frame
    baseline, in pixels.

    Args:
      predicted: [N, T, H, W, 3] in [-1, 1], whole clips whose first ``context_frames`` frames are the context
        (as a frame-conditional G returns them).
      true_centres: [N, T, 2] the true object centres (y, x) in frame widths (``synthetic.clip_centres``).
      context_frames: C >= 1.
    Returns:
      {"per_frame": [T - C] prediction errors, "baseline_per_frame": [T - C] baseline errors (lists of floats,
      frame C first), "mean", "baseline_mean" (averaged over the predicted frames), "ratio" (mean / baseline)}.
    """
    predicted = np.asarray(predicted)
    true_centres = np.asarray(true_centres, np.float64)
    c = context_frames
    if not 1 <= c < predicted.shape[1] or true_centres.shape != predicted.shape[:2] + (2,):
        raise ValueError(f"prediction_errors needs 1 <= context_frames < T and centres [N, T, 2] for clips "
                         f"{list(predicted.shape)}, got context_frames={c}, centres {list(true_centres.shape)}.")
    scale = predicted.shape[-2]  # frame widths -> pixels
    truth = true_centres[:, c:]
    predicted_centres = pixel_centroids(predicted[:, c:])
    last_context = pixel_centroids(predicted[:, c - 1])[:, None, :]
    error = np.linalg.norm(predicted_centres - truth, axis=-1).mean(axis=0) * scale
    baseline = np.linalg.norm(last_context - truth, axis=-1).mean(axis=0) * scale
    mean, baseline_mean = float(error.mean()), float(baseline.mean())
    return {"per_frame": [float(e) for e in error], "baseline_per_frame": [float(b) for b in baseline],
            "mean": mean, "baseline_mean": baseline_mean,
            "ratio": mean / baseline_mean if baseline_mean > 0 else float("inf")}


def format_table(errors, context_frames):
    """The per-frame table (markdown) of ``prediction_errors``' result."""
    lines = ["| predicted frame | prediction error (px) | baseline error (px) |", "|---|---|---|"]
    for i, (e, b) in enumerate(zip(errors["per_frame"], errors["baseline_per_frame"])):
        lines.append(f"| {context_frames + i} | {e:.2f} | {b:.2f} |")
    lines.append(f"| mean | {errors['mean']:.2f} | {errors['baseline_mean']:.2f} |")
    return "\n".join(lines)
