"""Files only their owner may read: the journal, the report and the run lock name accounts
and channels, so each is created with mode 0600 (and its directory made when missing).
A file that cannot be created or written raises :class:`PrivateFileError`, a sentence
naming the path and the operating system's reason, never a bare ``OSError``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from bulkpolyv.errors import BulkPolyvError


class PrivateFileError(BulkPolyvError):
    """A file bulkpolyv must write cannot be created or written."""

    def __init__(self, path: Path, error: OSError) -> None:
        self.reason = error.strerror or str(error)
        super().__init__(f"cannot write {path}: {self.reason}")
        self.path = path


def state_dir() -> Path:
    """Where journals and locks go by default: ``$XDG_STATE_HOME/bulkpolyv``."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "bulkpolyv"


def open_private(path: Path, flags: int) -> int:
    """``os.open`` with mode 0600, enforced even when the file already existed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where a directory must be: say that, not "exists"
        raise PrivateFileError(path, NotADirectoryError(20, "Not a directory")) from None
    except OSError as exc:
        raise PrivateFileError(path, exc) from None
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise PrivateFileError(path, exc) from None
    os.fchmod(fd, 0o600)
    return fd


def write_private(path: Path, text: str | Iterable[str], *, json_text: bool = False) -> None:
    """Write ``text`` (a string, or pieces of one made as they are written) atomically
    (temp file, fsync, rename), mode 0600.

    A lone surrogate (POLYV's "\\ud800", read into a nickname or a message) has no UTF-8.
    In ``json_text`` (JSON written with ``ensure_ascii=False``) it is written as the escape
    ``\\ud800``, which a JSON reader reads back as the same text; any other file would
    hold a different value, so it is refused (PrivateFileError) and nothing is written."""
    temp = path.with_name(path.name + ".tmp")
    try:
        fd = open_private(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    except PrivateFileError as error:  # name the file asked for, not its temp file
        raise PrivateFileError(path, OSError(0, error.reason)) from None
    try:
        errors = "backslashreplace" if json_text else "strict"
        with os.fdopen(fd, "w", encoding="utf-8", errors=errors) as handle:
            handle.writelines([text] if isinstance(text, str) else text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise PrivateFileError(path, exc) from None
    except UnicodeEncodeError:
        temp.unlink(missing_ok=True)
        why = "it would hold text that is not valid Unicode (a lone surrogate POLYV returned)"
        raise PrivateFileError(path, OSError(0, why)) from None


def check_writable(path: Path) -> None:
    """Create (and remove) ``path``'s temp file, as :func:`write_private` will: a file
    that cannot be written is found before a run sends anything."""
    if path.is_dir():
        raise PrivateFileError(path, IsADirectoryError(21, "Is a directory"))
    temp = path.with_name(path.name + ".tmp")
    try:
        os.close(open_private(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
    except PrivateFileError as error:
        raise PrivateFileError(path, OSError(0, error.reason)) from None
    temp.unlink(missing_ok=True)
