"""Network settings from gin: a value of the wrong type or range is one ConfigError naming the setting, before
any layer is built (not a Keras shape-inference traceback)."""
import os

import pytest

from dvdgan_tf import config
from dvdgan_tf.errors import ConfigError
from dvdgan_tf.nets import networks

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("binding, message", [
    ("G.ch = 'abc'", r"G\.ch must be an integer >= 1, got 'abc' \(str\)"),
    ("G.z_dim = -1", r"G\.z_dim must be an integer >= 1, got -1"),
    ("D_S.k = 2.5", r"D_S\.k must be an integer >= 1, got 2\.5 \(float\)"),
    ("D_T.num_3d_blocks = True", r"D_T\.num_3d_blocks must be an integer >= 0, got True \(bool\)"),
    ("D_T.channel_multipliers = (1, 'x')", r"D_T\.channel_multipliers must be a tuple of positive integers"),
    ("G.attention_resolutions = 16", r"G\.attention_resolutions must be a tuple of positive integers, got 16"),
    ("NUM_CLASSES = 0", r"G\.num_classes must be an integer >= 1, got 0"),
])
def test_bad_network_settings_are_one_line_config_errors(binding, message):
    config.parse_config([os.path.join(REPO, "gin", "demo.gin")], [binding])
    with pytest.raises(ConfigError, match=message) as error:
        networks.build_networks(kernel_initializer="zeros")
    assert "\n" not in str(error.value).split("  In call to configurable")[0].strip()


def test_good_settings_pass():
    config.parse_config([os.path.join(REPO, "gin", "demo.gin")], ["D_T.num_3d_blocks = 0"])
    assert networks.build_networks(kernel_initializer="zeros").G.ch == 16
