"""The identity files of one folder, read again only after the folder changed.

``read_listing`` sorts the folder's entries into identity files (by name) and problems: files
that look like identities but cannot be one (bad names, leftovers of interrupted writes, names
that differ only in case, which ``files.name_key`` makes one name). Temporary files of writes in
progress are ignored.

``FolderListing`` keeps the last listing and returns it while the folder's *version* is the one
it was read at: the folder's (device, inode, mtime) and the token in its marker file
``.hyperlora-listing``, which every store write replaces (``changed``). A listing is kept only
when it was read ``RACY_SECONDS`` or more after the folder last changed, since a second change
within the same timestamp tick (2 s on FAT, a clock tick elsewhere) leaves the mtime as it was;
and only when no write was in progress. The marker covers what the mtime cannot: stores of other
processes or machines (other clocks) writing within one tick, and network shares that cache a
folder's attributes (opening a file revalidates it). Thread-safe.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..files import atomic_write, is_temp_name, name_key, safe_name

SUFFIX = ".safetensors"
PREVIEW_SUFFIX = ".preview.png"
STALE_TEMP_SECONDS = 15 * 60  # a temporary file this old is left over from an interrupted write
MARKER = ".hyperlora-listing"
RACY_SECONDS = 3.0

Version = tuple[int, int, int, bytes]


@dataclass(frozen=True)
class Listing:
    """``found``: stored name -> identity file; ``problems``: file name -> what is wrong and what
    to do; ``spellings``: ``name_key`` -> the stored names with that key (two or more: a conflict)."""

    found: dict[str, Path] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    spellings: dict[str, tuple[str, ...]] = field(default_factory=dict)


def read_listing(folder: Path) -> tuple[Listing, bool]:
    """List ``folder`` now: (listing, settled); ``settled`` is False while a write is in progress
    (a temporary file younger than ``STALE_TEMP_SECONDS``). A missing folder lists as empty."""
    found: dict[str, Path] = {}
    problems: dict[str, str] = {}
    settled = True
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return Listing(), True
    now = time.time()
    for entry in entries:
        name = entry.name
        if is_temp_name(name) and (SUFFIX in name or PREVIEW_SUFFIX in name):
            try:
                age = now - entry.stat().st_mtime
            except FileNotFoundError:
                settled = False  # a write just finished
                continue
            if age > STALE_TEMP_SECONDS:
                problems[name] = (f"{Path(entry.path)}: left over from an interrupted write (a WebUI stopped "
                                  "while saving an identity); delete it")
            else:
                settled = False  # a write in progress, possibly by another process
            continue
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
    spellings: dict[str, list[str]] = {}
    for stem in sorted(found):
        spellings.setdefault(name_key(stem), []).append(stem)
    for same in spellings.values():
        for stem in same if len(same) > 1 else ():
            others = ", ".join(repr(o) for o in same if o != stem)
            problems[stem + SUFFIX] = (f"{found[stem]}: its name differs from {others} only in case, and names "
                                       "are case-insensitive (a tag cannot tell them apart); rename or delete "
                                       "all but one")
    return Listing(found, problems, {k: tuple(v) for k, v in spellings.items()}), settled


class FolderListing:
    """The listing of ``folder``, cached by its version (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._kept: tuple[Version, Listing] | None = None

    def version(self) -> Version | None:
        """The folder's version now; None when it cannot be read (no folder, no permission)."""
        try:
            st = os.stat(self.folder)
        except OSError:
            return None
        try:
            with open(self.folder / MARKER, "rb") as f:
                token = f.read(64)
        except FileNotFoundError:
            token = b""  # no store wrote here yet
        except OSError:
            return None
        return st.st_dev, st.st_ino, st.st_mtime_ns, token

    def get(self, fresh: bool = False) -> Listing:
        """The folder's listing: the kept one while the folder is unchanged, else read now
        (``fresh``: always read now)."""
        version = self.version()
        with self._lock:
            if not fresh and self._kept is not None and version is not None and self._kept[0] == version:
                return self._kept[1]
        started = time.time_ns()
        listing, settled = read_listing(self.folder)
        keep = settled and version is not None and started - version[2] >= RACY_SECONDS * 1e9
        with self._lock:
            self._kept = (version, listing) if keep and version is not None else None
        return listing

    def changed(self) -> None:
        """This process changed the folder: forget the kept listing and tell every other store
        (a new marker token)."""
        with self._lock:
            self._kept = None
        try:
            atomic_write(self.folder / MARKER, os.urandom(16).hex().encode())
        except OSError:
            pass  # the change itself succeeded; other stores still see the folder's mtime
