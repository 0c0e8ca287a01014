"""A run whose model_dir is not on the local disk: TensorFlow's in-memory file system (ram://) stands in for
gs://. Every file the run writes goes through tf.io.gfile, so it trains, resumes, exports and restores there."""
import numpy as np
import tensorflow as tf

from dvdgan_tf.training import loop
from dvdgan_tf.training import run_dir as run_dir_lib
from test_training_loop import tiny_config


def test_train_resume_export_and_restore_on_ram_filesystem(capsys):
    model_dir = "ram://dvdgan-test/run"
    tiny_config("train.num_steps = 4", "train.checkpoint_every = 2")
    assert loop.train(model_dir)["step"] == 4
    tiny_config("train.num_steps = 6", "train.checkpoint_every = 2", "train.export_at_end = True")
    assert loop.train(model_dir)["step"] == 6
    err = capsys.readouterr().err
    assert "resuming from ram://dvdgan-test/run/checkpoints/ckpt-4 (step 4)" in err and "warning" not in err
    names = sorted(n.rstrip("/") for n in tf.io.gfile.listdir(model_dir))
    assert "operative_config.gin" in names and "lock" not in names
    assert sorted(run_dir_lib.list_checkpoints(model_dir)) == [2, 4, 6]
    generator, step = run_dir_lib.restore_ema_generator(model_dir)
    assert step == 6
    exported = tf.saved_model.load(model_dir + "/export/6")
    z, labels = tf.random.normal([2, 120], seed=3), tf.constant([0, 2])
    video = exported.signatures["serving_default"](z=z, label=labels, truncation=tf.constant(0.0))["video"]
    np.testing.assert_allclose(generator(z, labels, training=False).numpy(), video.numpy(), atol=1e-5)
    tf.io.gfile.rmtree("ram://dvdgan-test")
