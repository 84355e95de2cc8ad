"""Identity: the predicted coefficient tokens of one person (+ provenance), and its file format.

An identity is tiny (Q x K = 1120 x 128 float32, ~0.6 MB) next to the LoRA it expands to
(11.6 M parameters), so identities are what gets stored; LoRA weights are made on demand.
File: safetensors with tensors ``tokens`` (Q, K), optional ``base_tokens`` (Q, K), and
``crop.N`` (PNG bytes as uint8) plus string metadata (``format = hyperlora-identity``).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from .errors import HyperLoRAError
from .files import atomic_write

FORMAT = "hyperlora-identity"
FORMAT_VERSION = "1"
PREVIEW_SIZE = 256


@dataclass
class Identity:
    """Pooled, L2-normalised coefficient tokens and where they came from.

    ``tokens``: (Q, K) float32 on the CPU; ``base_tokens``: same, or None;
    ``crops``: the aligned face crops (PIL) the prediction used.
    """

    tokens: torch.Tensor
    variant: str
    model_fingerprint: str
    base_tokens: torch.Tensor | None = None
    name: str = ""
    source_names: tuple[str, ...] = ()
    source_digests: tuple[str, ...] = ()
    options: dict[str, object] = field(default_factory=dict)
    crops: list[Image.Image] = field(default_factory=list)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))

    @property
    def hash(self) -> str:
        """12 hex digits identifying the coefficients (changes whenever the LoRA would)."""
        h = hashlib.sha256(self.tokens.float().contiguous().numpy().tobytes())
        if self.base_tokens is not None:
            h.update(self.base_tokens.float().contiguous().numpy().tobytes())
        h.update(self.model_fingerprint.encode())
        return h.hexdigest()[:12]

    @property
    def has_base(self) -> bool:
        return self.base_tokens is not None

    def preview(self) -> Image.Image | None:
        """The first crop, for UIs and LoRA previews."""
        return self.crops[0] if self.crops else None

    def to_bytes(self) -> bytes:
        tensors = {"tokens": self.tokens.float().contiguous()}
        if self.base_tokens is not None:
            tensors["base_tokens"] = self.base_tokens.float().contiguous()
        for i, crop in enumerate(self.crops):
            buf = io.BytesIO()
            crop.convert("RGB").resize((PREVIEW_SIZE, PREVIEW_SIZE), Image.BICUBIC).save(buf, format="PNG")
            tensors[f"crop.{i}"] = torch.from_numpy(np.frombuffer(buf.getvalue(), dtype=np.uint8).copy())
        meta = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "variant": self.variant,
            "model_fingerprint": self.model_fingerprint, "name": self.name, "created": self.created,
            "identity_hash": self.hash, "source_names": json.dumps(list(self.source_names)),
            "source_digests": json.dumps(list(self.source_digests)), "options": json.dumps(self.options),
        }
        return safetensors_bytes(tensors, metadata=meta)

    def save(self, path: str | Path, overwrite: bool = True) -> Path:
        """Write atomically; see the module docstring for the format."""
        return atomic_write(path, self.to_bytes(), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path) -> Identity:
        """Read an identity file; raises ``HyperLoRAError`` naming the file for anything else."""
        path = Path(path)
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("format") != FORMAT:
                    raise HyperLoRAError(f"{path}: not a HyperLoRA identity file (format is "
                                         f"{meta.get('format')!r}); a LoRA file belongs in the Lora folder")
                if meta.get("format_version") != FORMAT_VERSION:
                    raise HyperLoRAError(f"{path}: identity format version {meta.get('format_version')!r} "
                                         f"is not supported (this extension reads {FORMAT_VERSION})")
                keys = set(f.keys())
                tokens = f.get_tensor("tokens")
                base = f.get_tensor("base_tokens") if "base_tokens" in keys else None
                crop_keys = sorted((k for k in keys if k.startswith("crop.")), key=lambda k: int(k[5:]))
                crops = [Image.open(io.BytesIO(f.get_tensor(k).numpy().tobytes())).convert("RGB")
                         for k in crop_keys]
                identity = cls(
                    tokens=tokens.float(), base_tokens=None if base is None else base.float(),
                    variant=meta.get("variant", ""), model_fingerprint=meta.get("model_fingerprint", ""),
                    name=meta.get("name", ""), source_names=tuple(json.loads(meta.get("source_names", "[]"))),
                    source_digests=tuple(json.loads(meta.get("source_digests", "[]"))),
                    options=json.loads(meta.get("options", "{}")), crops=crops,
                    created=meta.get("created", ""),
                )
        except HyperLoRAError:
            raise
        except Exception as exc:  # damaged file: header, tensors, json or PNG
            raise HyperLoRAError(f"{path}: cannot read identity file ({exc}); delete it or re-create "
                                 "the identity") from exc
        if tokens.ndim != 2 or (base is not None and base.shape != tokens.shape):
            raise HyperLoRAError(f"{path}: identity tokens have shape {tuple(tokens.shape)}; file is damaged")
        if meta.get("identity_hash") and meta["identity_hash"] != identity.hash:
            raise HyperLoRAError(f"{path}: identity hash mismatch (file damaged or edited)")
        return identity
