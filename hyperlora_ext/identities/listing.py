"""The identity files of one folder.

``read_listing`` sorts the folder's entries into identity files (by name) and problems: files
that look like identities but cannot be one (bad names, leftovers of interrupted writes, names
that differ only in case, which ``files.name_key`` makes one name). Temporary files of writes in
progress are ignored.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..files import is_temp_name, name_key, safe_name

SUFFIX = ".safetensors"
PREVIEW_SUFFIX = ".preview.png"
STALE_TEMP_SECONDS = 15 * 60  # a temporary file this old is left over from an interrupted write


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
