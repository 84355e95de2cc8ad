"""Is a model file whole? Header checks (no weights read) and the sha256 the hub publishes.

Used before loading (``model.locations``: missing or damaged files) and after each download
(``download``). No imports beyond the standard library.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def verify_file(path: Path) -> str | None:
    """Why ``path`` is not a complete model file (reads headers only), or None when it looks whole.

    safetensors: the header must parse and describe exactly the bytes that follow it; json: must
    parse; anything else: must not be empty."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if size == 0:
        return "is empty"
    if path.suffix == ".safetensors":
        try:
            with open(path, "rb") as f:
                n = int.from_bytes(f.read(8), "little")
                if not 0 < n <= min(size - 8, 100 << 20):
                    return "is not a complete safetensors file (its header does not fit the file)"
                header = json.loads(f.read(n))
            header.pop("__metadata__", None)
            end = max((int(v["data_offsets"][1]) for v in header.values()), default=0)
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            return f"has a damaged safetensors header ({exc})"
        if 8 + n + end != size:
            return f"is truncated or damaged: {size} bytes, its header describes {8 + n + end}"
    elif path.suffix == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return f"is not valid JSON, truncated or damaged ({exc})"
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
