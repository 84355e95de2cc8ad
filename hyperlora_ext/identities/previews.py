"""Preview images that follow their identity file: ``NAME.preview.png`` beside ``NAME.safetensors``
(the aligned face, the Extra Networks card's image), for ``store.IdentityStore``.

A preview is drawn from the identity file there *now* and checked again afterwards, so a preview
written by a concurrent process for another version never stays beside it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Callable

from ..files import move, same_entry, unlink_quiet, write_temp
from .identity import Identity

Content = tuple[int, int, int]


def content(path: Path) -> Content | None:
    """(inode, size, mtime) of a file, kept by renames and links; None if it is gone."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def sync_preview(path: Path, preview: Path, load: Callable[[], Identity | None],
                 known: tuple[Content | None, Identity] | None = None) -> None:
    """Make ``preview`` show the face of the identity file ``path`` now (remove it when there is
    none, or the identity has no face). ``load``: reads that identity (None when it cannot);
    ``known``: (content, identity) this process just wrote, to skip reading it back."""
    for _ in range(4):
        now = content(path)
        image = None
        if now is not None:
            identity = known[1] if known is not None and known[0] == now else load()
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
        if content(path) == now:
            return


def respell(src: Path, dst: Path) -> None:
    """Give preview ``src`` the spelling ``dst`` after a rename to another spelling of the same
    name (on a case-insensitive filesystem only the spelling changes); nothing if there is none."""
    try:
        if same_entry(src, dst):
            os.rename(src, dst)
        else:
            os.replace(src, dst)
    except FileNotFoundError:
        pass  # no preview (no face crop); sync_preview draws one if needed
