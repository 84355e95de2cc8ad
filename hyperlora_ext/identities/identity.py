"""Identity: the predicted coefficient tokens of one person (+ provenance), and its file format.

An identity is tiny (Q x K = 1120 x 128 float32, ~0.6 MB) next to the LoRA it expands to
(11.6 M parameters), so identities are what gets stored; LoRA weights are made on demand.
File: safetensors with tensors ``tokens`` (Q, K), optional ``base_tokens`` (Q, K), optional
``embedding`` (512,) (reference ArcFace embedding), optional ``negative_tokens`` /
``negative_base_tokens`` (Q, K) (sliders), and ``crop.N`` (PNG bytes as uint8), plus string
metadata (``format = hyperlora-identity``; ``parents``: JSON provenance of mixes and sliders).
Files without the optional parts (older versions) load unchanged, with the same hash. Sliders
are written as format version 2, so an older reader refuses them instead of using only their
positive half; everything else stays version 1.
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
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as safetensors_bytes

from ..errors import HyperLoRAError
from ..files import atomic_write

FORMAT = "hyperlora-identity"
FORMAT_VERSION = "1"
SLIDER_FORMAT_VERSION = "2"  # has negative tokens: LoRA(tokens) - LoRA(negative_tokens)
READABLE_VERSIONS = (FORMAT_VERSION, SLIDER_FORMAT_VERSION)
PREVIEW_SIZE = 256


def pool_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """Average (N, Q, K) tokens over images and L2-normalise each token -> (Q, K), float32.

    How the official model averages several photos into one identity (and how mixes combine)."""
    mean = tokens.float().mean(dim=0)
    return mean * (mean.pow(2).sum(dim=-1, keepdim=True) + 1e-8).rsqrt()


@dataclass(frozen=True)
class Parent:
    """One input of a mix or slider: its name, identity hash and factor (slider: +1 / -1)."""

    name: str
    hash: str
    factor: float


@dataclass
class Identity:
    """Pooled, L2-normalised coefficient tokens and where they came from.

    ``tokens``: (Q, K) float32 on the CPU; ``base_tokens``: same, or None;
    ``crops``: the aligned face crops (PIL) the prediction used.
    ``embedding``: reference ArcFace embedding (512,) float32 or None (older files): the mean of
    the photos' L2-normalised embeddings, stored as computed (norm <= 1, not re-normalised);
    use ``unit_embedding()`` for cosines.
    ``negative_tokens`` / ``negative_base_tokens``: set for a slider, whose LoRA is
    LoRA(tokens) - LoRA(negative_tokens) (see ``identities.algebra``); ``parents``: provenance.
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
    embedding: torch.Tensor | None = None
    negative_tokens: torch.Tensor | None = None
    negative_base_tokens: torch.Tensor | None = None
    parents: tuple[Parent, ...] = ()

    @property
    def hash(self) -> str:
        """12 hex digits identifying the coefficients (changes whenever the LoRA would).

        Only what shapes the LoRA counts: tokens, base tokens, a slider's negative tokens and
        the model. The reference embedding, names and provenance do not, so files from before
        they existed keep their hash.
        """
        h = hashlib.sha256(self.tokens.float().contiguous().numpy().tobytes())
        if self.base_tokens is not None:
            h.update(self.base_tokens.float().contiguous().numpy().tobytes())
        h.update(self.model_fingerprint.encode())
        if self.negative_tokens is not None:
            h.update(b"negative")
            h.update(self.negative_tokens.float().contiguous().numpy().tobytes())
            if self.negative_base_tokens is not None:
                h.update(self.negative_base_tokens.float().contiguous().numpy().tobytes())
        return h.hexdigest()[:12]

    @property
    def is_slider(self) -> bool:
        """True for a slider (``HyperLoRAModel.expand`` gives LoRA(tokens) - LoRA(negative_tokens))."""
        return self.negative_tokens is not None

    def unit_embedding(self) -> torch.Tensor | None:
        """The reference embedding re-normalised to length 1 (512,), or None."""
        if self.embedding is None:
            return None
        e = self.embedding.float()
        return e / e.norm().clamp_min(1e-12)

    @property
    def has_base(self) -> bool:
        return self.base_tokens is not None

    def preview(self) -> Image.Image | None:
        """The first crop, for UIs and LoRA previews."""
        return self.crops[0] if self.crops else None

    def to_bytes(self) -> bytes:
        tensors = {"tokens": self.tokens.float().contiguous()}
        optional = {"base_tokens": self.base_tokens, "embedding": self.embedding,
                    "negative_tokens": self.negative_tokens, "negative_base_tokens": self.negative_base_tokens}
        tensors.update({k: v.float().contiguous() for k, v in optional.items() if v is not None})
        for i, crop in enumerate(self.crops):
            buf = io.BytesIO()
            crop.convert("RGB").resize((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.BICUBIC).save(buf, format="PNG")
            tensors[f"crop.{i}"] = torch.from_numpy(np.frombuffer(buf.getvalue(), dtype=np.uint8).copy())
        meta = {
            "format": FORMAT, "format_version": SLIDER_FORMAT_VERSION if self.is_slider else FORMAT_VERSION,
            "variant": self.variant,
            "model_fingerprint": self.model_fingerprint, "name": self.name, "created": self.created,
            "identity_hash": self.hash, "source_names": json.dumps(list(self.source_names)),
            "source_digests": json.dumps(list(self.source_digests)), "options": json.dumps(self.options),
        }
        if self.parents:
            meta["parents"] = json.dumps([{"name": p.name, "hash": p.hash, "factor": p.factor} for p in self.parents])
        return safetensors_bytes(tensors, metadata=meta)

    def save(self, path: str | Path, overwrite: bool = True) -> Path:
        """Write atomically; see the module docstring for the format."""
        return atomic_write(path, self.to_bytes(), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path) -> Identity:
        """Read an identity file; raises ``HyperLoRAError`` naming the file for anything else."""
        path = Path(path)
        try:
            # Read into memory (identity files are small): a memory map would crash the process
            # (SIGBUS) if another program truncated the file while it is read.
            data = path.read_bytes()
            header_len = int.from_bytes(data[:8], "little")
            meta = json.loads(data[8:8 + header_len]).get("__metadata__") or {}
            tensors = load_safetensors(data)
            if meta.get("format") != FORMAT:
                raise HyperLoRAError(f"{path}: not a HyperLoRA identity file (format is "
                                     f"{meta.get('format')!r}); a LoRA file belongs in the Lora folder")
            if meta.get("format_version") not in READABLE_VERSIONS:
                raise HyperLoRAError(f"{path}: identity format version {meta.get('format_version')!r} "
                                     f"is not supported (this extension reads {', '.join(READABLE_VERSIONS)})")
            keys = set(tensors)
            tokens = tensors["tokens"]
            opt = {k: tensors[k].float() if k in keys else None
                   for k in ("base_tokens", "embedding", "negative_tokens", "negative_base_tokens")}
            base = opt["base_tokens"]
            crop_keys = sorted((k for k in keys if k.startswith("crop.")), key=lambda k: int(k[5:]))
            crops = [Image.open(io.BytesIO(tensors[k].numpy().tobytes())).convert("RGB")
                     for k in crop_keys]
            identity = cls(
                tokens=tokens.float(), base_tokens=None if base is None else base.float(),
                variant=meta.get("variant", ""), model_fingerprint=meta.get("model_fingerprint", ""),
                name=meta.get("name", ""), source_names=tuple(json.loads(meta.get("source_names", "[]"))),
                source_digests=tuple(json.loads(meta.get("source_digests", "[]"))),
                options=json.loads(meta.get("options", "{}")), crops=crops,
                created=meta.get("created", ""), embedding=opt["embedding"],
                negative_tokens=opt["negative_tokens"], negative_base_tokens=opt["negative_base_tokens"],
                parents=tuple(Parent(str(p["name"]), str(p["hash"]), float(p["factor"]))
                              for p in json.loads(meta.get("parents", "[]"))),
            )
        except HyperLoRAError:
            raise
        except Exception as exc:  # damaged file: header, tensors, json or PNG
            raise HyperLoRAError(f"{path}: cannot read identity file ({exc}); delete it or re-create "
                                 "the identity") from exc
        same = [t for t in (base, opt["negative_tokens"], opt["negative_base_tokens"]) if t is not None]
        embedding = opt["embedding"]
        if (tokens.ndim != 2 or any(t.shape != tokens.shape for t in same)
                or (embedding is not None and embedding.ndim != 1)):
            raise HyperLoRAError(f"{path}: identity tokens have shape {tuple(tokens.shape)}; file is damaged")
        if meta.get("identity_hash") and meta["identity_hash"] != identity.hash:
            raise HyperLoRAError(f"{path}: identity hash mismatch (file damaged or edited)")
        return identity
