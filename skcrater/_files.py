"""Writing files so that nobody ever sees half of one.

Every file skcrater writes (model files, predictions, reports) goes through
:func:`atomic_writer`: the content is written to a temporary file in the
destination folder, flushed to disk and then renamed into place, so an
interrupted write leaves the old file (or no file), never a partial one. An
existing file is replaced only when asked to, and the temporary file is
removed whatever goes wrong.

A write killed outright (``SIGKILL``, a power cut) cannot remove its
temporary file; the next write of the same destination removes the ones left
behind. A writer holds a lock on its temporary file while it writes (on
Windows, where there is no such lock, an open file cannot be deleted), so
only temporary files of dead writers are removed, never one being written.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows, where a file open for writing cannot be deleted at all
    fcntl = None

__all__ = [
    "atomic_writer",
    "check_destination",
    "refuse_existing",
    "remove_stale_parts",
    "write_bytes",
]


def refuse_existing(paths, *, overwrite, how="pass overwrite=True"):
    """Raise ``FileExistsError`` naming every path of ``paths`` that exists, unless ``overwrite``.

    ``how`` tells the caller's user how to allow the replacement (the
    command line says ``pass --overwrite``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skcrater._files import refuse_existing
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> refuse_existing([folder / "new.txt"], overwrite=False)
    >>> refuse_existing([folder], overwrite=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: ... exists; pass overwrite=True to replace it.
    """
    if overwrite:
        return
    found = [path for path in paths if os.path.lexists(path)]
    if found:
        raise _exists(found, how)


def check_destination(path, *, overwrite):
    """Refuse, before any work, a destination that :func:`atomic_writer` would refuse.

    Raises ``IsADirectoryError`` for a folder, ``FileNotFoundError`` when the
    folder to write in is missing and ``FileExistsError`` (through
    :func:`refuse_existing`) for an existing file unless ``overwrite``.
    """
    path = Path(os.fspath(path))
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the name of a file to write.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {path}: folder {path.parent} does not exist.")
    refuse_existing([path], overwrite=overwrite)
    return path


@contextlib.contextmanager
def atomic_writer(path, *, overwrite=False):
    """Open a binary file whose content appears at ``path`` only once complete.

    The file is created beside ``path`` under a random hidden name, with the
    permissions ``open`` would give (the umask applies), and written by the
    ``with`` block. When the block ends without an exception the data is
    flushed and fsync'd, then renamed onto ``path``; with ``overwrite=False``
    the rename refuses a file that appeared meanwhile. On any exception
    (``KeyboardInterrupt`` included) the temporary file is removed and
    ``path`` is left as it was. Temporary files of ``path`` that killed
    writes left behind are removed first (:func:`remove_stale_parts`).

    Parameters
    ----------
    path : str or path-like
        Destination file; its folder must exist.
    overwrite : bool, default=False
        Replace an existing file.

    Yields
    ------
    file : binary file object
        Write the content to it.

    Raises
    ------
    IsADirectoryError, FileNotFoundError, FileExistsError
        As :func:`check_destination`, before anything is written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skcrater._files import atomic_writer
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
    >>> with atomic_writer(path) as file:
    ...     _ = file.write(b"complete")
    >>> path.read_bytes(), [p.name for p in path.parent.iterdir()]
    (b'complete', ['note.txt'])
    """
    path = check_destination(path, overwrite=overwrite)
    remove_stale_parts(path)
    tmp, fd = _create_locked_part(path)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
            if fcntl is not None:
                # renamed while still locked, so that no clean-up removes it meanwhile
                _rename(tmp, path, overwrite=overwrite)
        if fcntl is None:  # Windows renames closed files only
            _rename(tmp, path, overwrite=overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def remove_stale_parts(path):
    """Remove the temporary files that killed writes of ``path`` left behind.

    Only hidden files named as :func:`atomic_writer` names the temporary
    files of this very destination (``.NAME.<12 hex digits>.part``) are
    considered, and of those only the ones no live writer holds locked. This
    is best effort: a file that cannot be examined or removed is left alone.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skcrater._files import remove_stale_parts
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / ".model.skcrater.0123456789ab.part").write_bytes(b"half")
    >>> remove_stale_parts(folder / "model.skcrater")
    >>> list(folder.iterdir())
    []
    """
    path = Path(os.fspath(path))
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{12}}\.part")
    with os.scandir(path.parent) as entries:
        parts = [
            e.path
            for e in entries
            if pattern.fullmatch(e.name) and e.is_file(follow_symlinks=False)
        ]
    for part in parts:
        # never let the clean-up of an earlier failure make this write fail
        with contextlib.suppress(OSError):
            _remove_if_unlocked(part)


def _remove_if_unlocked(part):
    if fcntl is None:
        os.unlink(part)  # refused (PermissionError) while a writer has the file open
        return
    fd = os.open(part, os.O_RDONLY)
    try:
        # BlockingIOError while a live writer holds the lock; a dead one holds nothing
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.unlink(part)
    finally:
        os.close(fd)


def _create_locked_part(path):
    """Create and lock a new temporary file beside ``path``; return its name and descriptor."""
    # os.open with 0o666 leaves the permissions to the umask (mkstemp would give 0o600)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
        fd = os.open(tmp, flags, 0o666)
        if fcntl is None:
            return tmp, fd
        # a file system without locks just leaves this writer's file unprotected,
        # and the clean-up cannot lock (so remove) anything there either
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:
            return tmp, fd
        # a clean-up of the same destination removed the file between its creation and the lock
        os.close(fd)


def write_bytes(path, data, *, overwrite=False):
    """Write ``data`` to ``path`` through :func:`atomic_writer`; return the path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skcrater._files import write_bytes
    >>> path = write_bytes(pathlib.Path(tempfile.mkdtemp()) / "a.bin", b"\\x00\\x01")
    >>> path.read_bytes()
    b'\\x00\\x01'
    """
    with atomic_writer(path, overwrite=overwrite) as file:
        file.write(data)
    return Path(os.fspath(path))


def _rename(tmp, path, *, overwrite):
    """Move the finished file onto ``path``, never replacing a file unless ``overwrite``."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic, and fails if the name was taken meanwhile
    except FileExistsError:
        raise _exists([path]) from None
    except OSError:  # file systems without hard links
        if os.path.lexists(path):
            raise _exists([path]) from None
        os.replace(tmp, path)


def _exists(found, how="pass overwrite=True"):
    if len(found) == 1:
        return FileExistsError(f"{found[0]} exists; {how} to replace it.")
    return FileExistsError(f"{', '.join(map(str, found))} exist; {how} to replace them.")
