"""gin parsing: shipped files resolve, bad files and bindings give messages that name the problem."""
import pytest

from dvdgan_tf import config


def test_binding_overrides_file():
    config.parse_config(["gin/ucf101.gin"], ["D_S.k = 4"])
    import gin
    assert gin.query_parameter("D_S.k") == 4
    assert gin.query_parameter("%NUM_FRAMES") == 16


def test_config_found_by_basename_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config.parse_config(["ucf101.gin"])[0].endswith("gin/ucf101.gin")


@pytest.mark.parametrize("binding, named", [
    ("G.no_such_parameter = 1", "Configurable 'G' doesn't have a parameter named 'no_such_parameter'"),
    ("Nope.x = 1", "No configurable matching 'Nope'"),
    ("G.ch == 3", "--gin_param='G.ch == 3'"),
])
def test_bad_binding_names_the_problem(binding, named):
    with pytest.raises(config.ConfigError) as info:
        config.parse_config(["gin/ucf101.gin"], [binding])
    assert named in str(info.value)


def test_unknown_parameter_in_a_file_names_file_and_parameter(tmp_path):
    bad = tmp_path / "bad.gin"
    bad.write_text("include 'base.gin'\nD_T.frobnicate = 3\n")
    with pytest.raises(config.ConfigError, match=r"bad.gin.*'D_T' doesn't have a parameter named 'frobnicate'"):
        config.parse_config([str(bad)])


def test_missing_file_lists_shipped_configs():
    with pytest.raises(config.ConfigError, match=r"'gin/nope.gin' not found. Shipped configs: .*ucf101.gin"):
        config.parse_config(["gin/nope.gin"])


def test_no_file_is_an_error():
    with pytest.raises(config.ConfigError, match="no gin file given"):
        config.parse_config([])
