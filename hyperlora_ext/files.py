"""Safe file names, the case rule for names, and atomic writes that several processes may do in
one folder at once (with ``folder_lock`` for a check-then-write step)."""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]  # no file locks there: checked before each use

_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
MAX_NAME = 100


def safe_name(name: str) -> str:
    """A user-supplied name reduced to a safe file stem (letters, digits, ``-_.`` and spaces).

    Raises ``ValueError`` when nothing usable remains.
    """
    text = unicodedata.normalize("NFKC", str(name)).strip()
    text = re.sub(r"[^\w\-. ]+", "_", text, flags=re.UNICODE)
    text = re.sub(r"\s+", " ", text).strip(" ._")[:MAX_NAME].strip(" ._")
    if not text or text.lower() in _RESERVED:
        raise ValueError(f"{name!r} is not usable as a name: use letters, digits, '-', '_' or '.'")
    return text


def name_key(name: str) -> str:
    """The one case rule for names: two names are the same name when their keys are equal
    (case-insensitive, surrounding spaces ignored), as on Windows and macOS file systems."""
    return str(name).strip().lower()


def spelling_in(folder: str | os.PathLike, file_name: str) -> str:
    """``file_name`` as spelled by the file in ``folder`` that has the same ``name_key`` (itself when
    there is none, or when it is there exactly as given)."""
    try:
        entries = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return file_name
    if file_name in entries:
        return file_name
    same = sorted(e for e in entries if name_key(e) == name_key(file_name))
    return same[0] if same else file_name


def path_in(folder: str | os.PathLike, name: str, suffix: str) -> Path:
    """``folder/safe_name(name) + suffix``, guaranteed to stay inside ``folder``."""
    folder = Path(folder).resolve()
    path = (folder / (safe_name(name) + suffix)).resolve()
    if path.parent != folder:
        raise ValueError(f"{name!r} would leave the folder {folder}")
    return path


TEMP_SUFFIX = ".tmp"


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file of ``write_temp`` (hidden, ``.tmp``)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def write_temp(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a new hidden temporary file beside ``path`` (flushed to disk, mode 0644)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # readable by other WebUI processes (mkstemp makes it 0600)
    except BaseException:
        unlink_quiet(tmp)
        raise
    return Path(tmp)


def move(src: str | os.PathLike, dst: str | os.PathLike, overwrite: bool = False) -> None:
    """Rename ``src`` to ``dst`` atomically; other processes see the old or the new state only.

    With ``overwrite=False`` it never replaces a file, even one another process published a
    moment ago: ``FileExistsError`` if ``dst`` exists, ``FileNotFoundError`` if ``src`` was moved
    or removed meanwhile (then ``dst`` is left as it was).
    """
    src, dst = os.fspath(src), os.fspath(dst)
    if overwrite:
        os.replace(src, dst)
        return
    if os.name == "nt":
        os.rename(src, dst)  # Windows never replaces an existing file here
        return
    try:
        os.link(src, dst)  # fails when dst exists: the exclusive step
    except FileExistsError:
        if not _same_file(src, dst):  # NFS can answer EEXIST for a link that did succeed
            raise
    except FileNotFoundError:
        raise
    except OSError:  # no hard links on this filesystem (FAT, some shares): claim the name first
        os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        try:
            os.replace(src, dst)
        except BaseException:
            unlink_quiet(dst)
            raise
        return
    try:
        os.unlink(src)
    except FileNotFoundError:  # another process moved or removed src at the same time: it wins
        unlink_quiet(dst)
        raise


def atomic_write(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then ``move``.

    Readers never see a partial file. With ``overwrite=False`` an existing file raises
    ``FileExistsError`` and is left untouched, also when another process creates it meanwhile.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists; choose another name or allow overwriting")
    tmp = write_temp(path, data)
    try:
        move(tmp, path, overwrite=overwrite)
    except FileExistsError:
        raise FileExistsError(f"{path} already exists; choose another name or allow overwriting") from None
    finally:
        unlink_quiet(tmp)
    return path


LOCK_NAME = ".hyperlora.lock"


@contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold ``folder``'s write lock (the folder is created if needed): an advisory ``flock`` on
    ``folder/.hyperlora.lock``, shared by every process and thread that writes there, released
    when the block ends or the process dies. Without locks (Windows, where file names are
    case-insensitive and ``move`` is exclusive anyway; a network share without lock support) the
    block runs unlocked."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # ENOLCK / EOPNOTSUPP: a filesystem without locks
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


def same_entry(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` both exist and are one file (e.g. two spellings of one name on a
    case-insensitive filesystem)."""
    return _same_file(os.fspath(a), os.fspath(b))


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def unlink_quiet(path: str | os.PathLike) -> None:
    """Remove ``path`` if it exists."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
