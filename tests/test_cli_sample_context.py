"""dvdgan-sample --context: a prediction export continues a clip's first C frames and the output shows each
prediction beside the real clip; the user errors (a synthesis export with --context, a prediction export without
it, a clip shorter than C, an unreadable or missing file, no --label for a multi-class export) are one line and
exit 2, checked before TensorFlow loads."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from dvdgan_tf.export import saved_model as export
from dvdgan_tf.io import video as video_io
from dvdgan_tf.nets import truncation

from test_cli_export_sample import decode, one_line_error, run_binary
from test_export_predict import CLASSES, CONTEXT, FRAMES, RES, tiny_prediction_generator


def moving_clip(frames, height, width):
    """uint8 [frames, height, width, 3]: a white 4x4 square moving right on a coloured ramp (GIF-friendly)."""
    clip = np.zeros((frames, height, width, 3), np.uint8)
    clip[..., 0] = np.linspace(0, 200, width, dtype=np.uint8)[None, None]
    clip[..., 2] = 90
    for t in range(frames):
        clip[t, 6:10, 2 + 2 * t:6 + 2 * t] = 255
    return clip


def fake_export(folder, **metadata):
    """A folder that passes dvdgan-sample's checks before TensorFlow: saved_model.pb (not read) and the metadata."""
    os.makedirs(os.path.join(folder, "assets"))
    with open(os.path.join(folder, "saved_model.pb"), "wb") as f:
        f.write(b"not read before the checks")
    with open(os.path.join(folder, "assets", "dvdgan_export.json"), "w", encoding="utf-8") as f:
        json.dump(dict({"num_classes": 1, "num_frames": 9, "resolution": 16, "z_dim": 120}, **metadata), f)
    return str(folder)


def test_predictions_beside_the_real_clip(tmp_path):
    g = tiny_prediction_generator()
    path = export.export_generator(g, str(tmp_path / "export"), step=1, config_text="")
    # 6 frames of 16 x 24: the short side is already 16, so the model sees the centre 16 x 16 (columns 4 ... 19),
    # and only 6 of the 9 frames of the real clip exist.
    clip = moving_clip(6, 16, 24)
    (tmp_path / "clip.gif").write_bytes(video_io.encode_gif(clip))
    out = str(tmp_path / "pred.gif")
    result = run_binary("sample", f"--export_dir={path}", f"--context={tmp_path / 'clip.gif'}", "--num=2",
                        "--label=1", "--seed=3", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote 2 prediction(s) of class 1 from 2 context frame(s)" in result.stdout
    frames = decode(out).astype(int)
    assert frames.shape == (FRAMES, 2 * RES + 2, 2 * RES + 2, 3)  # 2 rows (predictions) x 2 columns, 2 px apart
    real = clip[:, :, 4:20].astype(int)
    cells = {(row, col): frames[:, row * (RES + 2):row * (RES + 2) + RES, col * (RES + 2):col * (RES + 2) + RES]
             for row in range(2) for col in range(2)}
    for row in range(2):
        left, right = cells[row, 0], cells[row, 1]
        assert np.abs(left[:6] - real).mean() < 4  # the real clip (GIF palettes: small differences)
        assert left[6:].max() < 8  # frames beyond the clip's end: black
        assert np.abs(right[:CONTEXT] - real[:CONTEXT]).mean() < 4  # the prediction starts from the context
    # The predictions are the generator's for the z the export's latents signature draws for seed 3 (the shared
    # truncation.latents), the clip's context and label 1, one per row.
    context = np.repeat(real[None, :CONTEXT] / 127.5 - 1, 2, axis=0).astype(np.float32)
    expected = g(truncation.latents([2, 120], tf.constant([3, 0]), "resample", 0.0), tf.constant([1, 1]),
                 training=False, context=tf.constant(context)).numpy()
    expected = np.round((expected + 1) * 127.5).astype(int)
    for row in range(2):
        assert np.abs(cells[row, 1][CONTEXT:] - expected[row, CONTEXT:]).mean() < 4
    assert np.abs(expected[0, CONTEXT:] - expected[1, CONTEXT:]).mean() > 1  # two different predictions


@pytest.mark.parametrize("case", ["synthesis_with_context", "prediction_without_context", "short_clip",
                                  "unreadable", "missing", "no_label"])
def test_context_mistakes_are_one_line(case, tmp_path):
    clip = tmp_path / "clip.gif"
    clip.write_bytes(video_io.encode_gif(moving_clip(4, 16, 16)))
    prediction = dict(context_frames=CONTEXT, predicted_frames=FRAMES - CONTEXT)
    folder = tmp_path / "e"
    args, expected = {
        "synthesis_with_context": (lambda: (fake_export(folder), f"--context={clip}"),
                                   "is a synthesis model (no context frames): it takes no --context"),
        "prediction_without_context": (lambda: (fake_export(folder, **prediction), "--label=0"),
                                       "is a prediction model: it continues 2 context frame(s) of a real clip. "
                                       "Give one with --context="),
        "short_clip": (lambda: (fake_export(folder, **dict(prediction, context_frames=5)), f"--context={clip}"),
                       "has 4 frame(s), fewer than the 5 context frames"),
        "unreadable": (lambda: (fake_export(folder, **prediction), f"--context={folder / 'saved_model.pb'}"),
                       "cannot read --context clip"),
        "missing": (lambda: (fake_export(folder, **prediction), f"--context={tmp_path / 'none.mp4'}"),
                    "none.mp4 does not exist"),
        "no_label": (lambda: (fake_export(folder, num_classes=CLASSES, **prediction), f"--context={clip}"),
                     "this export has 2 classes: give the class the predictions are conditioned on with --label"),
    }[case]
    export_dir, *rest = args()
    result = run_binary("sample", f"--export_dir={export_dir}", *rest, f"--out={tmp_path / 'out.gif'}")
    line = one_line_error(result, "dvdgan-sample")
    assert expected in line, line
    assert not (tmp_path / "out.gif").exists()
