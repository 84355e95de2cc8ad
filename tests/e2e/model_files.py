"""Writing the e2e suite's random model files (imported by the standalone builder scripts beside it, which
other interpreters run: only the standard library and ``safetensors`` here)."""

from __future__ import annotations

import os
from pathlib import Path


def save_safetensors_atomically(state: dict, out: Path, note: str) -> Path:
    """Write ``state`` (name -> torch tensor) to ``out`` through a temporary file beside it, so a file at
    ``out`` is always complete; ``note`` goes into the metadata."""
    from safetensors.torch import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        save_file(state, str(tmp), metadata={"format": "pt", "note": note})
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
