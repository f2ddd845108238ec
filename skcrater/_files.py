"""Writing files so that nobody ever sees half of one.

Every file skcrater writes (model files, predictions, reports) goes through
:func:`atomic_writer`: the content is written to a temporary file in the
destination folder, flushed to disk and then renamed into place, so an
interrupted write leaves the old file (or no file), never a partial one. An
existing file is replaced only when asked to, and the temporary file is
removed whatever goes wrong.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["atomic_writer", "check_destination", "refuse_existing", "write_bytes"]


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
    ``path`` is left as it was.

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
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    try:
        # os.open with 0o666 leaves the permissions to the umask (mkstemp would give 0o600)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        with os.fdopen(os.open(tmp, flags, 0o666), "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        _rename(tmp, path, overwrite=overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


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
