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


@pytest.mark.parametrize("binding, named", [
    ("train.num_steps = (1", "gin syntax error: a bracket is not closed before the end"),
    ("train.num_steps = '''1", "gin syntax error: the string opened at line 1 is not closed"),
])
def test_syntax_error_in_a_binding_is_a_config_error(binding, named):
    # tokenize.TokenError, not a ValueError: it escaped as a traceback before.
    with pytest.raises(config.ConfigError) as info:
        config.parse_config(["gin/demo.gin"], [binding])
    assert str(info.value) == f"bad configuration in --gin_param={binding!r}: {named}."


def test_unclosed_string_in_a_file_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.gin"
    bad.write_text("include 'base.gin'\nD_S.k = 4\ntrain.model_dir_note = '''never closed\n")
    with pytest.raises(config.ConfigError, match=r"^bad configuration in gin file .*bad.gin: gin syntax error: "
                                                 r"the string opened at line 3 is not closed\.$"):
        config.parse_config([str(bad)])


def test_include_resolves_among_shipped_configs_from_any_directory(tmp_path, monkeypatch):
    # A user's config in another folder includes the shipped base.gin by basename; the search paths of an
    # earlier call (a folder holding another base.gin) do not decide which base.gin is included.
    other = tmp_path / "other"
    other.mkdir()
    (other / "base.gin").write_text("G.z_dim = 99\n")
    (other / "x.gin").write_text("include 'base.gin'\n")
    config.parse_config([str(other / "x.gin")])
    import gin
    assert gin.query_parameter("G.z_dim") == 99
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "my.gin").write_text("include 'base.gin'\nD_S.k = 4\n")
    monkeypatch.chdir(mine)
    config.parse_config(["my.gin"])
    assert gin.query_parameter("D_S.k") == 4
    assert gin.query_parameter("G.z_dim") == 120  # the shipped base.gin's value (the paper's z size)
    assert config.shipped_gin_dir() == config.REPO_GIN_DIR  # a source checkout: the repository's gin/
