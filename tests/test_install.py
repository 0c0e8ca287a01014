"""A non-editable install: the wheel holds the gin configs, and after installing it the binaries find them by
basename (and `include 'base.gin'` inside them) from any directory, without the repository."""
import glob
import os
import shutil
import subprocess
import sys
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _build_wheel(tmp_path):
    """Builds the wheel offline from a copy of the working tree (so that no build/ lands in the repository)."""
    src = tmp_path / "src"
    shutil.copytree(os.path.join(REPO, "dvdgan_tf"), src / "dvdgan_tf",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    shutil.copytree(os.path.join(REPO, "gin"), src / "gin")
    for name in ("setup.py", "README.md"):
        shutil.copy(os.path.join(REPO, name), src / name)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(dist), str(src)], check=True, cwd=tmp_path, timeout=120)
    (wheel,) = glob.glob(str(dist / "dvdgan_tf-*.whl"))
    return wheel


def test_wheel_ships_gin_configs_and_they_are_found_from_another_directory(tmp_path):
    wheel = _build_wheel(tmp_path)
    shipped = sorted(os.path.basename(f) for f in glob.glob(os.path.join(REPO, "gin", "*.gin")))
    assert "demo.gin" in shipped and "base.gin" in shipped
    with zipfile.ZipFile(wheel) as zf:
        in_wheel = sorted(os.path.basename(n) for n in zf.namelist() if n.startswith("dvdgan_tf/gin/"))
    assert in_wheel == shipped

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    wheel], check=True, timeout=120)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site))
    # The package imported is the installed one, not the repository's (whose gin/ would be found beside it).
    where = subprocess.run([sys.executable, "-c", "import dvdgan_tf; print(dvdgan_tf.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(site) + os.sep), where.stdout
    assert not (site / "gin").exists()
    # The installed console script; demo.gin by basename, and its `include 'base.gin'`.
    script = site / "bin" / "dvdgan-train"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "dvdgan_tf.cli.train"]
    result = subprocess.run([*command, "--gin_file=demo.gin", "--dry_run"], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    for network in ("G", "D_S", "D_T"):
        assert f"\n{network}: " in result.stdout and " parameters" in result.stdout, result.stdout[-2000:]
    # base.gin's bindings (the demo does not set D_T.downsample) are in the printed configuration.
    assert "D_T.downsample = 2" in result.stdout, result.stdout[:3000]
