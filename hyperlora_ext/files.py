"""Safe file names and atomic writes."""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from pathlib import Path

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


def path_in(folder: str | os.PathLike, name: str, suffix: str) -> Path:
    """``folder/safe_name(name) + suffix``, guaranteed to stay inside ``folder``."""
    folder = Path(folder).resolve()
    path = (folder / (safe_name(name) + suffix)).resolve()
    if path.parent != folder:
        raise ValueError(f"{name!r} would leave the folder {folder}")
    return path


def atomic_write(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    Readers never see a partial file. With ``overwrite=False`` an existing file raises
    ``FileExistsError`` and is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists; choose another name or allow overwriting")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if not overwrite:
            try:  # a link fails if the target appeared meanwhile, so nothing is overwritten
                os.link(tmp, path)
                return path
            except FileExistsError:
                raise FileExistsError(f"{path} already exists; choose another name or allow overwriting") from None
            except OSError:
                if path.exists():
                    raise FileExistsError(f"{path} already exists") from None
        os.replace(tmp, path)
        return path
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
