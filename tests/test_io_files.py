"""The one I/O module: atomic files and folders, umask permissions, leftovers, errors, the cache root, and the same
behaviour on TensorFlow's in-memory file system (ram://, the stand-in for gs:// here)."""
import errno
import os
import stat

import pytest
import tensorflow as tf

from dvdgan_tf.io import files


@pytest.fixture(params=["local", "ram"])
def root(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path)
        return
    path = f"ram://io-test-{os.getpid()}-{id(request)}"
    tf.io.gfile.makedirs(path)
    yield path
    tf.io.gfile.rmtree(path)


def listing(folder):
    return sorted(n.rstrip("/") for n in tf.io.gfile.listdir(folder))


def test_write_replaces_whole_and_leaves_no_temporary(root):
    path = files.join(root, "sub", "a.txt")
    files.write_text(path, "old")
    files.write_text(path, "new")
    assert files.read_text(path) == "new"
    assert listing(files.join(root, "sub")) == ["a.txt"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(root):
    path = files.join(root, "a.bin")
    files.write_bytes(path, b"old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(path) as tmp:
            with tf.io.gfile.GFile(tmp, "wb") as f:
                f.write(b"half")
            raise RuntimeError("killed half-way")
    with tf.io.gfile.GFile(path, "rb") as f:
        assert f.read() == b"old"
    assert listing(root) == ["a.bin"]


def test_publish_dir_appears_whole_or_not_at_all(root):
    final = files.join(root, "export")
    with files.publish_dir(final) as tmp:
        files.write_text(files.join(tmp, "x"), "1")
        assert not tf.io.gfile.exists(final)  # nothing visible before the end
    assert listing(final) == ["x"]
    with pytest.raises(RuntimeError):
        with files.publish_dir(final) as tmp:
            files.write_text(files.join(tmp, "y"), "2")
            raise RuntimeError("failed")
    assert listing(final) == ["x"] and listing(root) == ["export"]
    with files.publish_dir(final) as tmp:  # a complete new version replaces the old one whole
        files.write_text(files.join(tmp, "z"), "3")
    assert listing(final) == ["z"] and listing(root) == ["export"]


def test_append_line(root):
    path = files.join(root, "metrics.jsonl")
    files.append_line(path, '{"a": 1}')
    files.append_line(path, '{"a": 2}\n')
    assert files.read_text(path) == '{"a": 1}\n{"a": 2}\n'


def test_create_exclusive(root):
    path = files.join(root, "lock")
    assert files.create_exclusive(path, "first")
    assert not files.create_exclusive(path, "second")
    assert files.read_text(path) == "first"


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_local_files_and_folders_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        files.write_text(str(tmp_path / "f"), "x")
        with files.publish_dir(str(tmp_path / "d")) as tmp:
            files.write_text(os.path.join(tmp, "g"), "y")
        files.append_line(str(tmp_path / "log"), "z")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
    assert mode(tmp_path / "f") == mode(tmp_path / "log") == mode(tmp_path / "d" / "g") == 0o666 & ~umask
    assert mode(tmp_path / "d") == 0o777 & ~umask


def test_remove_leftovers_takes_only_temporaries(tmp_path):
    for name in (".a.txt.tmp-123abc", "ckpt-5_temp", "ckpt-5.index", "keep.txt"):
        (tmp_path / name).mkdir() if name.endswith("_temp") else (tmp_path / name).write_text("x")
    assert sorted(files.remove_leftovers(str(tmp_path))) == [".a.txt.tmp-123abc", "ckpt-5_temp"]
    assert sorted(os.listdir(tmp_path)) == ["ckpt-5.index", "keep.txt"]


def test_storage_error_names_path_free_space_and_need(tmp_path):
    full = files.storage_error(str(tmp_path / "x"), OSError(errno.ENOSPC, "No space left on device"), 3 * 2**20)
    assert str(full).startswith(f"cannot write {tmp_path / 'x'}: the disk is full (")
    assert "free there; about 3.0 MiB is needed)" in str(full)
    denied = files.storage_error("/root/x", PermissionError(errno.EACCES, "Permission denied"))
    assert str(denied) == "cannot write /root/x: Permission denied."
    assert isinstance(full, files.StorageError) and isinstance(full, OSError)


def test_cache_root_order(monkeypatch, tmp_path):
    monkeypatch.delenv("DVDGAN_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert files.cache_root() == os.path.join(os.path.expanduser("~"), ".cache", "dvdgan_tf")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert files.cache_root() == str(tmp_path / "xdg" / "dvdgan_tf")
    monkeypatch.setenv("DVDGAN_CACHE_DIR", str(tmp_path / "mine"))
    assert files.cache_root() == str(tmp_path / "mine")
