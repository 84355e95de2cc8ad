"""IdentityStore: the named identities a user created, one small file each, in one folder.

Layout: ``<folder>/<name>.safetensors`` (``Identity`` file) and ``<name>.preview.png`` (the
aligned face, for Extra Networks cards). Names are sanitised with ``files.safe_name`` and can
never leave the folder; lookups are exact first, then case-insensitive. Files are written
atomically; a damaged file raises ``HyperLoRAError`` naming it and never hides the others.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

from .errors import HyperLoRAError
from .files import atomic_write, path_in, safe_name
from .identity import Identity

SUFFIX = ".safetensors"
PREVIEW_SUFFIX = ".preview.png"


class IdentityStore:
    """Thread-safe store of identities in ``folder`` (created on first write)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._lock = threading.RLock()
        self._cache: dict[Path, tuple[tuple[int, int], Identity]] = {}

    # ---- names ---------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Stored identity names, sorted case-insensitively."""
        if not self.folder.is_dir():
            return []
        return sorted((p.name[: -len(SUFFIX)] for p in self.folder.iterdir()
                       if p.name.endswith(SUFFIX) and not p.name.startswith(".")), key=str.lower)

    def resolve(self, name: str) -> str | None:
        """The stored name ``name`` refers to (exact, else case-insensitive), or None."""
        names = self.names()
        if name in names:
            return name
        lowered = [n for n in names if n.lower() == str(name).strip().lower()]
        return lowered[0] if len(lowered) == 1 else None

    def path(self, name: str) -> Path:
        return path_in(self.folder, name, SUFFIX)

    def preview_path(self, name: str) -> Path:
        return path_in(self.folder, name, PREVIEW_SUFFIX)

    def __contains__(self, name: str) -> bool:
        return self.resolve(name) is not None

    # ---- read ----------------------------------------------------------------------------
    def get(self, name: str) -> Identity:
        """Load identity ``name``; ``KeyError`` if there is none, ``HyperLoRAError`` if damaged."""
        stored = self.resolve(name)
        if stored is None:
            raise KeyError(name)
        path = self.path(stored)
        with self._lock:
            try:
                st = path.stat()
            except FileNotFoundError:
                raise KeyError(name) from None
            stamp = (st.st_mtime_ns, st.st_size)
            cached = self._cache.get(path)
            if cached and cached[0] == stamp:
                return cached[1]
            identity = Identity.load(path)
            identity.name = stored
            self._cache[path] = (stamp, identity)
            return identity

    # ---- write ---------------------------------------------------------------------------
    def save(self, identity: Identity, name: str, overwrite: bool = False) -> str:
        """Store ``identity`` as ``name`` (sanitised; returned). ``FileExistsError`` if the name
        is taken and ``overwrite`` is False; nothing is changed then."""
        name = safe_name(name)
        with self._lock:
            existing = self.resolve(name)
            if existing is not None and existing != name and not overwrite:
                raise FileExistsError(f"an identity named {existing!r} already exists; choose another name "
                                      "or allow overwriting")
            identity.name = name
            atomic_write(self.path(name), identity.to_bytes(), overwrite=overwrite)
            self._write_preview(identity, name)
            return name

    def _write_preview(self, identity: Identity, name: str) -> None:
        preview = identity.preview()
        if preview is None:
            return
        buf = io.BytesIO()
        preview.convert("RGB").save(buf, format="PNG")
        atomic_write(self.preview_path(name), buf.getvalue())

    def rename(self, old: str, new: str) -> str:
        """Rename identity ``old`` to ``new`` (sanitised; returned). ``KeyError`` for an unknown
        ``old``, ``FileExistsError`` if ``new`` is taken by another identity. Atomic per file."""
        with self._lock:
            stored = self.resolve(old)
            if stored is None:
                raise KeyError(old)
            new = safe_name(new)
            taken = self.resolve(new)
            if taken is not None and taken != stored:
                raise FileExistsError(f"an identity named {taken!r} already exists")
            if new != stored:
                for src, dst in ((self.path(stored), self.path(new)),
                                 (self.preview_path(stored), self.preview_path(new))):
                    if src.exists():
                        os.replace(src, dst)
                    self._cache.pop(src, None)
            return new

    def delete(self, name: str) -> str:
        """Delete identity ``name`` and its preview; returns the stored name. ``KeyError`` if unknown."""
        with self._lock:
            stored = self.resolve(name)
            if stored is None:
                raise KeyError(name)
            self._remove(stored)
            return stored

    def _remove(self, name: str) -> None:
        for path in (self.path(name), self.preview_path(name)):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            self._cache.pop(path, None)

    def load_all(self) -> tuple[dict[str, Identity], dict[str, str]]:
        """(name -> identity, name -> error) for every stored file; damaged files are reported."""
        good, bad = {}, {}
        for name in self.names():
            try:
                good[name] = self.get(name)
            except (HyperLoRAError, KeyError) as exc:
                bad[name] = str(exc)
        return good, bad
