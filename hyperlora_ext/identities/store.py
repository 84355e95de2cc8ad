"""IdentityStore: the named identities a user created, one small file each, in one folder.

Layout: ``<folder>/<name>.safetensors`` (``Identity`` file) and ``<name>.preview.png`` (the
aligned face, for Extra Networks cards). Names are sanitised with ``files.safe_name`` and can
never leave the folder. One case rule (``files.name_key``): names are case-insensitive, one
identity per name, kept under the spelling it was created or last renamed with; a lookup finds
the exact spelling first, else the one name equal ignoring case (``NameConflictError`` when files
made outside the store differ only in case). Unknown names raise ``UnknownIdentityError`` (a
``KeyError``), unusable files ``DamagedIdentityError``.

Several processes (WebUI instances, machines on a network share) may use one folder at once:
the listing is read again whenever the folder changed (``listing.FolderListing``), loaded
identities are cached per file version (inode, size, mtime, ctime), a write checks the name and
publishes its file under the folder's write lock (``files.folder_lock``), atomically and
exclusively (a name another process just took raises ``FileExistsError``, nothing is clobbered),
and each preview is re-checked against the identity file it belongs to. Files that are not
identities are reported, never loaded, and never hide the others.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..errors import DamagedIdentityError, HyperLoRAError, NameConflictError, UnknownIdentityError
from ..files import folder_lock, move, name_key, path_in, safe_name, same_entry, unlink_quiet, write_temp
from .identity import Identity
from .listing import PREVIEW_SUFFIX, STALE_TEMP_SECONDS, SUFFIX, FolderListing, Listing, read_listing
from .previews import Content, content, respell, sync_preview

__all__ = ["IdentityStore", "PREVIEW_SUFFIX", "STALE_TEMP_SECONDS", "SUFFIX"]

Stamp = tuple[int, int, int, int]


def _stamp(path: Path) -> Stamp:
    """One version of a file: (inode, size, mtime, ctime); ``FileNotFoundError`` if it is gone."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class IdentityStore:
    """Thread- and process-safe store of identities in ``folder`` (created on first write)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._lock = threading.RLock()
        self._cache: dict[Path, tuple[Stamp, Identity]] = {}
        self._listing = FolderListing(self.folder)

    # ---- names ---------------------------------------------------------------------------
    def scan(self) -> tuple[dict[str, Path], dict[str, str]]:
        """Read the folder now: (name -> identity file, file name -> problem) where problems are
        files that look like identities but cannot be one (bad name, interrupted write, a name
        that differs from another only in case)."""
        listing = read_listing(self.folder)[0]
        return dict(listing.found), dict(listing.problems)

    def names(self) -> list[str]:
        """Stored identity names, sorted case-insensitively (the folder is listed again when it changed)."""
        return sorted(self._listing.get().found, key=str.lower)

    def resolve(self, name: str, fresh: bool = False) -> str | None:
        """The stored name ``name`` refers to: itself when stored so, else the one stored name equal
        ignoring case; None if there is none. ``NameConflictError`` when several stored names
        differ from it only in case. ``fresh``: list the folder now."""
        return self._resolve_in(self._listing.get(fresh), name)

    def _resolve_in(self, listing: Listing, name: str) -> str | None:
        name = str(name)
        if name in listing.found:
            return name
        same = listing.spellings.get(name_key(name), ())
        if len(same) > 1:
            raise NameConflictError(
                f"{name!r} matches {len(same)} identities whose names differ only in case ("
                f"{', '.join(map(repr, same))}) in {self.folder}; names are case-insensitive: rename or delete "
                "all but one")
        return same[0] if same else None

    def path(self, name: str) -> Path:
        """The identity file of ``name`` (``ValueError`` for a name that cannot be one)."""
        return path_in(self.folder, name, SUFFIX)

    def preview_path(self, name: str) -> Path:
        """The preview image of ``name``."""
        return path_in(self.folder, name, PREVIEW_SUFFIX)

    def __contains__(self, name: str) -> bool:
        try:
            return self.resolve(name) is not None
        except NameConflictError:
            return True

    # ---- read ---------------------------------------------------------------------------
    def get(self, name: str) -> Identity:
        """Load identity ``name``: ``UnknownIdentityError`` if there is none, ``DamagedIdentityError``
        if its file cannot be used, ``NameConflictError`` as ``resolve``."""
        stored = self.resolve(name)
        if stored is None:
            raise UnknownIdentityError(name)
        return self._load(stored, name)

    def _load(self, stored: str, asked: str) -> Identity:
        try:
            path = self.path(stored)
        except ValueError as exc:  # e.g. a link pointing out of the folder
            raise DamagedIdentityError(f"{self.folder / (stored + SUFFIX)}: {exc}; remove it") from None
        with self._lock:
            for _ in range(3):
                try:
                    before = _stamp(path)
                except FileNotFoundError:  # renamed or deleted by another process meanwhile
                    raise UnknownIdentityError(asked) from None
                cached = self._cache.get(path)
                if cached and cached[0] == before:
                    return cached[1]
                try:
                    identity = Identity.load(path)
                except HyperLoRAError as exc:
                    if not path.exists():
                        raise UnknownIdentityError(asked) from None
                    if _stamp(path) != before:
                        continue  # replaced while being read: read the new version
                    raise DamagedIdentityError(str(exc)) from exc
                identity.name = stored
                try:
                    if _stamp(path) == before:  # cache only a version known to be the one read
                        self._cache[path] = (before, identity)
                except FileNotFoundError:
                    pass
                return identity  # complete and hash-checked, whatever happened to the file since
        raise DamagedIdentityError(f"{path}: the file kept changing while being read (another WebUI is writing "
                                   "it?); try again")

    def load_all(self) -> tuple[dict[str, Identity], dict[str, str]]:
        """(name -> identity, name or file name -> problem) for every file in the folder;
        damaged, foreign and left-over files are reported, never loaded."""
        listing = self._listing.get()
        good: dict[str, Identity] = {}
        bad = dict(listing.problems)
        for name in sorted(listing.found, key=str.lower):
            try:
                good[name] = self._load(name, name)
            except KeyError:
                pass  # removed by another process since the listing
            except HyperLoRAError as exc:
                bad[name] = str(exc)
        with self._lock:
            for path in set(self._cache) - {p.resolve() for p in listing.found.values()}:
                del self._cache[path]
        return good, bad

    # ---- write ---------------------------------------------------------------------------
    def _taken(self, name: str) -> FileExistsError:
        return FileExistsError(f"an identity named {name!r} already exists (perhaps just created by another "
                               "WebUI sharing this folder); choose another name, or delete or overwrite it")

    def save(self, identity: Identity, name: str, overwrite: bool = False) -> str:
        """Store ``identity`` as ``name`` (sanitised) and return its stored name: ``name``, or with
        ``overwrite`` the spelling of the identity it replaces (names are case-insensitive).
        ``FileExistsError`` if the name is taken in any case, also by another process at the same
        moment, and ``overwrite`` is False; nothing is changed then."""
        name = safe_name(name)
        with self._lock, folder_lock(self.folder):
            existing = self.resolve(name, fresh=True)
            if existing is not None and not overwrite:
                raise self._taken(existing)
            name = existing or name
            identity.name = name
            path = self.path(name)
            tmp = write_temp(path, identity.to_bytes())
            try:
                mine = content(tmp)
                move(tmp, path, overwrite=overwrite)
            except FileExistsError:
                raise self._taken(name) from None
            finally:
                unlink_quiet(tmp)
                self._listing.changed()
        self._sync_preview(name, (mine, identity))
        return name

    def _sync_preview(self, name: str, known: tuple[Content | None, Identity] | None = None) -> None:
        """``previews.sync_preview`` for ``name``."""
        def load() -> Identity | None:
            try:
                return self._load(name, name)
            except (KeyError, HyperLoRAError):
                return None

        sync_preview(self.path(name), self.preview_path(name), load, known)

    def rename(self, old: str, new: str) -> str:
        """Rename identity ``old`` to ``new`` (sanitised; returned), also to another spelling of
        its own name. ``UnknownIdentityError`` for an unknown ``old`` (also one another process
        renamed or deleted at the same moment), ``FileExistsError`` if ``new`` is another
        identity's name in any case, also just now by another process. The preview follows."""
        new = safe_name(new)
        with self._lock, folder_lock(self.folder):
            listing = self._listing.get(fresh=True)
            stored = self._resolve_in(listing, old)
            if stored is None:
                raise UnknownIdentityError(old)
            taken = self._resolve_in(listing, new)
            if taken is not None and taken != stored:
                raise self._taken(taken)
            if new == stored:
                return new
            respelled = name_key(new) == name_key(stored)
            src, dst = self.path(stored), self.path(new)
            try:
                if respelled and same_entry(src, dst):
                    os.rename(src, dst)  # one file under both spellings: a case-insensitive filesystem
                else:
                    move(src, dst)
            except FileExistsError:
                raise self._taken(new) from None
            except FileNotFoundError:
                raise UnknownIdentityError(old) from None
            finally:
                self._cache.pop(src, None)
                self._listing.changed()
            if respelled:
                respell(self.preview_path(stored), self.preview_path(new))
        self._sync_preview(new)
        if not respelled:
            self._sync_preview(stored)  # removes the old preview unless the name was re-used meanwhile
        return new

    def delete(self, name: str) -> str:
        """Delete identity ``name`` and its preview; returns the stored name. ``UnknownIdentityError``
        if unknown, also when another process renamed or deleted it at the same moment."""
        with self._lock:
            stored = self.resolve(name)
            if stored is None:
                raise UnknownIdentityError(name)
            path = self.path(stored)
            try:
                path.unlink()
            except FileNotFoundError:
                raise UnknownIdentityError(name) from None
            finally:
                self._cache.pop(path, None)
                self._listing.changed()
            self._sync_preview(stored)  # removes it, or re-draws it if the name was re-used meanwhile
            return stored
