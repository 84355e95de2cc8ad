"""IdentityStore: the named identities a user created, one small file each, in one folder.

Layout: ``<folder>/<name>.safetensors`` (``Identity`` file) and ``<name>.preview.png`` (the
aligned face, for Extra Networks cards). Names are sanitised with ``files.safe_name`` and can
never leave the folder; lookups are exact first, then case-insensitive.

Several processes (WebUI instances, machines on a network share) may use one folder at once:
the folder is listed on every lookup (loaded identities are cached per file version:
inode, size, mtime, ctime), files are published atomically and exclusively (a name another
process just took raises ``FileExistsError``, nothing is clobbered), and each preview is
re-checked against the identity file it belongs to. Files that are not identities (damaged,
foreign, badly named, leftovers of an interrupted write) are reported, never loaded, and
never hide the others; temporary files of writes in progress are ignored.
"""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

from ..errors import HyperLoRAError
from ..files import is_temp_name, move, path_in, safe_name, unlink_quiet, write_temp
from .identity import Identity

SUFFIX = ".safetensors"
PREVIEW_SUFFIX = ".preview.png"
STALE_TEMP_SECONDS = 15 * 60  # a temporary file this old is left over from an interrupted write

Stamp = tuple[int, int, int, int]


def _stamp(path: Path) -> Stamp:
    """One version of a file: (inode, size, mtime, ctime); ``FileNotFoundError`` if it is gone."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _content(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime) of a file, kept by renames and links; None if it is gone."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class IdentityStore:
    """Thread- and process-safe store of identities in ``folder`` (created on first write)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._lock = threading.RLock()
        self._cache: dict[Path, tuple[Stamp, Identity]] = {}

    # ---- names ---------------------------------------------------------------------------
    def scan(self) -> tuple[dict[str, Path], dict[str, str]]:
        """Read the folder now: (name -> identity file, file name -> problem) where problems are
        files that look like identities but cannot be one (bad name, interrupted write)."""
        found: dict[str, Path] = {}
        problems: dict[str, str] = {}
        try:
            entries = list(os.scandir(self.folder))
        except (FileNotFoundError, NotADirectoryError):
            return found, problems
        now = time.time()
        for entry in entries:
            name = entry.name
            if is_temp_name(name) and (SUFFIX in name or PREVIEW_SUFFIX in name):
                try:
                    age = now - entry.stat().st_mtime
                except FileNotFoundError:
                    continue  # a write just finished
                if age > STALE_TEMP_SECONDS:
                    problems[name] = (f"{Path(entry.path)}: left over from an interrupted write (a WebUI stopped "
                                      "while saving an identity); delete it")
                continue  # younger: a write in progress, possibly by another process
            if name.startswith(".") or not name.endswith(SUFFIX):
                continue
            stem = name[: -len(SUFFIX)]
            try:
                usable = safe_name(stem)
            except ValueError:
                usable = None
            if usable != stem:
                hint = f"rename it to {usable + SUFFIX!r}" if usable else "rename it to letters and digits"
                problems[name] = f"{Path(entry.path)}: not a usable identity file name; {hint}"
                continue
            found[stem] = Path(entry.path)
        return found, problems

    def names(self) -> list[str]:
        """Stored identity names, sorted case-insensitively (read from the folder every time)."""
        return sorted(self.scan()[0], key=str.lower)

    def resolve(self, name: str) -> str | None:
        """The stored name ``name`` refers to (exact, else case-insensitive), or None."""
        names = self.names()
        if name in names:
            return name
        lowered = [n for n in names if n.lower() == str(name).strip().lower()]
        return lowered[0] if len(lowered) == 1 else None

    def path(self, name: str) -> Path:
        """The identity file of ``name`` (``ValueError`` for a name that cannot be one)."""
        return path_in(self.folder, name, SUFFIX)

    def preview_path(self, name: str) -> Path:
        """The preview image of ``name``."""
        return path_in(self.folder, name, PREVIEW_SUFFIX)

    def __contains__(self, name: str) -> bool:
        return self.resolve(name) is not None

    # ---- read ----------------------------------------------------------------------------
    def get(self, name: str) -> Identity:
        """Load identity ``name``; ``KeyError`` if there is none, ``HyperLoRAError`` if damaged."""
        stored = self.resolve(name)
        if stored is None:
            raise KeyError(name)
        return self._load(stored, name)

    def _load(self, stored: str, asked: str) -> Identity:
        try:
            path = self.path(stored)
        except ValueError as exc:  # e.g. a link pointing out of the folder
            raise HyperLoRAError(f"{self.folder / (stored + SUFFIX)}: {exc}; remove it") from None
        with self._lock:
            for _ in range(3):
                try:
                    before = _stamp(path)
                except FileNotFoundError:  # renamed or deleted by another process meanwhile
                    raise KeyError(asked) from None
                cached = self._cache.get(path)
                if cached and cached[0] == before:
                    return cached[1]
                try:
                    identity = Identity.load(path)
                except HyperLoRAError:
                    if not path.exists():
                        raise KeyError(asked) from None
                    if _stamp(path) != before:
                        continue  # replaced while being read: read the new version
                    raise
                identity.name = stored
                try:
                    if _stamp(path) == before:  # cache only a version known to be the one read
                        self._cache[path] = (before, identity)
                except FileNotFoundError:
                    pass
                return identity  # complete and hash-checked, whatever happened to the file since
        raise HyperLoRAError(f"{path}: the file kept changing while being read (another WebUI is writing "
                             "it?); try again")

    def load_all(self) -> tuple[dict[str, Identity], dict[str, str]]:
        """(name -> identity, name or file name -> problem) for every file in the folder;
        damaged, foreign and left-over files are reported, never loaded."""
        found, bad = self.scan()
        good: dict[str, Identity] = {}
        for name in sorted(found, key=str.lower):
            try:
                good[name] = self._load(name, name)
            except KeyError:
                pass  # removed by another process since the listing
            except HyperLoRAError as exc:
                bad[name] = str(exc)
        with self._lock:
            for path in set(self._cache) - {p.resolve() for p in found.values()}:
                del self._cache[path]
        return good, bad

    # ---- write ---------------------------------------------------------------------------
    def _taken(self, name: str) -> FileExistsError:
        return FileExistsError(f"an identity named {name!r} already exists (perhaps just created by another "
                               "WebUI sharing this folder); choose another name, or delete or overwrite it")

    def save(self, identity: Identity, name: str, overwrite: bool = False) -> str:
        """Store ``identity`` as ``name`` (sanitised; returned). ``FileExistsError`` if the name
        is taken, also by another process at the same moment, and ``overwrite`` is False;
        nothing is changed then."""
        name = safe_name(name)
        with self._lock:
            existing = self.resolve(name)
            if existing is not None and not overwrite:
                raise self._taken(existing)
            identity.name = name
            path = self.path(name)
            tmp = write_temp(path, identity.to_bytes())
            try:
                mine = _content(tmp)
                move(tmp, path, overwrite=overwrite)
            except FileExistsError:
                raise self._taken(name) from None
            finally:
                unlink_quiet(tmp)
            self._sync_preview(name, (mine, identity))
            return name

    def _sync_preview(self, name: str, known: tuple[tuple[int, int, int] | None, Identity] | None = None) -> None:
        """Make ``name``'s preview show the face of the identity file there now (remove it when
        there is none). Re-checks the file afterwards, so a preview written by a concurrent
        process for another version never stays beside it. ``known``: (content, identity)
        this process wrote, to skip reading it back."""
        path, preview = self.path(name), self.preview_path(name)
        for _ in range(4):
            content = _content(path)
            image = None
            if content is not None:
                if known is not None and known[0] == content:
                    identity = known[1]
                else:
                    try:
                        identity = self._load(name, name)
                    except (KeyError, HyperLoRAError):
                        identity = None
                image = identity.preview() if identity is not None else None
            if image is None:
                unlink_quiet(preview)
            else:
                buf = io.BytesIO()
                image.convert("RGB").save(buf, format="PNG")
                tmp = write_temp(preview, buf.getvalue())
                try:
                    move(tmp, preview, overwrite=True)
                finally:
                    unlink_quiet(tmp)
            if _content(path) == content:
                return

    def rename(self, old: str, new: str) -> str:
        """Rename identity ``old`` to ``new`` (sanitised; returned). ``KeyError`` for an unknown
        ``old`` (also one another process renamed or deleted at the same moment),
        ``FileExistsError`` if ``new`` is taken, also just now by another process. The preview follows."""
        with self._lock:
            stored = self.resolve(old)
            if stored is None:
                raise KeyError(old)
            new = safe_name(new)
            taken = self.resolve(new)
            if taken is not None and taken != stored:
                raise self._taken(taken)
            if new == stored:
                return new
            src, dst = self.path(stored), self.path(new)
            try:
                if new.lower() == stored.lower() and dst.exists() and os.path.samefile(src, dst):
                    os.rename(src, dst)  # case-only change on a case-insensitive filesystem
                else:
                    move(src, dst)
            except FileExistsError:
                raise self._taken(new) from None
            except FileNotFoundError:
                raise KeyError(old) from None
            finally:
                self._cache.pop(src, None)
            self._sync_preview(new)
            if new.lower() != stored.lower():
                self._sync_preview(stored)  # removes the old preview unless the name was re-used meanwhile
            return new

    def delete(self, name: str) -> str:
        """Delete identity ``name`` and its preview; returns the stored name. ``KeyError`` if
        unknown, also when another process renamed or deleted it at the same moment."""
        with self._lock:
            stored = self.resolve(name)
            if stored is None:
                raise KeyError(name)
            path = self.path(stored)
            try:
                path.unlink()
            except FileNotFoundError:
                raise KeyError(name) from None
            finally:
                self._cache.pop(path, None)
            self._sync_preview(stored)  # removes it, or re-draws it if the name was re-used meanwhile
            return stored
