"""skcrater._files: the one atomic writer behind model files, predictions and reports."""

import os
import stat
import sys

import pytest

from skcrater._files import atomic_writer, check_destination, refuse_existing, write_bytes


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_writes_the_content_and_leaves_no_temporary_file(tmp_path):
    path = write_bytes(tmp_path / "a.bin", b"complete")
    assert path == tmp_path / "a.bin"
    assert path.read_bytes() == b"complete"
    assert _names(tmp_path) == ["a.bin"]


def test_refuses_an_existing_file_unless_overwrite(tmp_path):
    path = write_bytes(tmp_path / "a.bin", b"old")
    with pytest.raises(FileExistsError, match=r"a\.bin exists; pass overwrite=True to replace it"):
        write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    write_bytes(path, b"new", overwrite=True)
    assert path.read_bytes() == b"new"
    assert _names(tmp_path) == ["a.bin"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("existing", [False, True])
def test_an_exception_midway_removes_the_temporary_file(tmp_path, error, existing):
    path = tmp_path / "a.bin"
    if existing:
        path.write_bytes(b"old")
    with pytest.raises(error), atomic_writer(path, overwrite=True) as file:
        file.write(b"half")
        assert len(_names(tmp_path)) == 1 + existing  # the temporary file, beside the target
        raise error("stop")
    assert _names(tmp_path) == (["a.bin"] if existing else [])
    if existing:
        assert path.read_bytes() == b"old"


def test_the_content_is_flushed_to_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync"))
    for name in ("link", "replace"):
        real = getattr(os, name)
        monkeypatch.setattr(
            os, name, lambda *a, _real=real, _n=name: events.append(_n) or _real(*a)
        )
    write_bytes(tmp_path / "new.bin", b"x")
    write_bytes(tmp_path / "new.bin", b"y", overwrite=True)
    assert events == ["fsync", "link", "fsync", "replace"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_permissions_follow_the_umask_like_open(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_bytes(tmp_path / "atomic.bin", b"x")
        with open(tmp_path / "plain.bin", "wb") as file:
            file.write(b"x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "atomic.bin").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.bin").stat().st_mode) == 0o666 & ~umask


def test_a_folder_is_refused_clearly(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(IsADirectoryError, match=r"sub is a folder; give the name of a file"):
        write_bytes(tmp_path / "sub", b"x", overwrite=True)
    assert _names(tmp_path) == ["sub"] and _names(tmp_path / "sub") == []


def test_a_missing_folder_is_refused_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"folder .*nowhere does not exist"):
        write_bytes(tmp_path / "nowhere" / "a.bin", b"x")
    assert _names(tmp_path) == []


def test_a_file_that_appears_while_writing_is_not_replaced(tmp_path):
    path = tmp_path / "a.bin"
    with pytest.raises(FileExistsError, match="overwrite=True"), atomic_writer(path) as file:
        file.write(b"mine")
        path.write_bytes(b"theirs")  # another process took the name meanwhile
    assert path.read_bytes() == b"theirs"
    assert _names(tmp_path) == ["a.bin"]


def test_file_systems_without_hard_links(tmp_path, monkeypatch):
    def no_links(*args):
        raise OSError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    write_bytes(tmp_path / "a.bin", b"new")
    assert (tmp_path / "a.bin").read_bytes() == b"new"
    other = tmp_path / "b.bin"
    with pytest.raises(FileExistsError, match="overwrite=True"), atomic_writer(other) as file:
        file.write(b"mine")
        other.write_bytes(b"theirs")
    assert other.read_bytes() == b"theirs"
    assert _names(tmp_path) == ["a.bin", "b.bin"]


def test_temporary_names_are_unique(tmp_path):
    """Two writers of one file at once do not share (or delete) each other's temporary file."""
    path = tmp_path / "a.bin"
    with atomic_writer(path, overwrite=True) as outer:
        outer.write(b"outer")
        write_bytes(path, b"inner", overwrite=True)
        assert len(_names(tmp_path)) == 2
    assert path.read_bytes() == b"outer"
    assert _names(tmp_path) == ["a.bin"]


def test_refuse_existing_names_every_existing_file(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).write_text(name)
    paths = [tmp_path / "a", tmp_path / "new", tmp_path / "b"]
    with pytest.raises(FileExistsError, match=r"a, .*b exist; pass --overwrite to replace them"):
        refuse_existing(paths, overwrite=False, how="pass --overwrite")
    refuse_existing(paths, overwrite=True)
    refuse_existing([tmp_path / "new"], overwrite=False)


def test_check_destination_accepts_str_and_returns_a_path(tmp_path):
    assert check_destination(str(tmp_path / "a.bin"), overwrite=False) == tmp_path / "a.bin"


@pytest.mark.parametrize("module", ["persistence", "datasets", "report"])
def test_every_writer_of_the_package_uses_this_one(module):
    """No module keeps a private copy of the rename-into-place logic."""
    import importlib
    import inspect

    source = inspect.getsource(importlib.import_module(f"skcrater.{module}"))
    for primitive in ("os.replace(", "os.link(", "os.fsync(", ".part"):
        assert primitive not in source, f"skcrater.{module} uses {primitive} itself"
    assert "from ._files import" in source
