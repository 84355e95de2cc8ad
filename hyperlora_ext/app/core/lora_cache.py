"""``LoRACache``: identities expanded into LoRA weights, cached, and written as LoRA files.

A tag expands its identity once; the next generations with the same identity and Base-LoRA
weight reuse the tensors (``LORA_CACHE_SIZE`` most recent). The tensors are exactly what a saved
LoRA file holds (``lora.file_tensors``), so a tag and its *Save as LoRA* file match bit for bit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from ...errors import HyperLoRAError
from ...files import path_in, safe_name, spelling_in
from ...identities.identity import Identity
from ...identities.lora_card import save_identity_lora
from ...lora import RECOMMENDED_WEIGHT, file_tensors
from ...model.numerics import own_numerics
from .model_manager import ModelManager

LORA_CACHE_SIZE = 4


@dataclass
class LoRAWeights:
    """Expanded weights of one identity at one Base-LoRA weight.

    ``key``: unique per identity version and base weight (hosts cache their objects by it);
    ``tensors``: kohya dict exactly as a saved LoRA file holds it (fp16 weights, fp32 alphas).
    """

    key: str
    identity: Identity
    base: float
    tensors: dict[str, torch.Tensor]


class LoRACache:
    def __init__(self, models: ModelManager) -> None:
        self._models = models
        self._lock = threading.RLock()
        self._loras: OrderedDict[tuple[str, float], LoRAWeights] = OrderedDict()

    def lora(self, identity: Identity, base: float = 0.0) -> LoRAWeights:
        """Expanded weights of ``identity`` with its Base-LoRA baked in at ``base`` (cached). The same
        identity and base give bit-identical tensors in any caller context (``numerics``)."""
        key = (identity.hash, float(base))
        with self._lock:
            if key in self._loras:
                self._loras.move_to_end(key)
                return self._loras[key]
            with self._models.lock:
                model = self._models.model_for(identity)  # its placement makes room before any GPU copy
                with own_numerics():  # a tag expands inside the host's generation context (autocast...)
                    tensors = file_tensors(model.expand(identity, base_weight=base))
            suffix = f"_b{base:g}" if base else ""
            weights = LoRAWeights(f"hyperlora_{identity.name}_{identity.hash}{suffix}", identity, base, tensors)
            self._loras[key] = weights
            while len(self._loras) > LORA_CACHE_SIZE:
                self._loras.popitem(last=False)
            return weights

    def save(self, identity: Identity, lora_dir: str | Path, file_name: str | None = None, base: float = 0.0,
             overwrite: bool = False, weight: float = RECOMMENDED_WEIGHT, extra: dict[str, str] | None = None
             ) -> Path:
        """Write ``identity`` as a kohya SDXL LoRA ``<lora_dir>/<file_name>.safetensors`` (default file
        name: the identity's), a complete Lora card (``identities.lora_card``: metadata, preview, sidecar
        whose click inserts ``weight`` and the trigger words; ``extra``: more ``hyperlora.*`` header keys),
        atomically; returns the path written. File names follow the identities' case rule on every
        filesystem: a LoRA file whose name differs only in case is that file (``FileExistsError`` naming it
        unless ``overwrite``, which replaces it under its own spelling). ``ValueError`` for a name that
        cannot be a file name."""
        if base and not identity.has_base:
            raise HyperLoRAError(f"{identity.name!r} has no Base-LoRA (the checkpoint provides none)")
        wanted = safe_name(file_name or identity.name)
        stem = spelling_in(Path(lora_dir), wanted + ".safetensors")[: -len(".safetensors")]
        path = path_in(lora_dir, stem, ".safetensors")
        if path.exists() and not overwrite:
            case = "" if stem == wanted else f" (the name {wanted!r} differs from it only in case)"
            raise FileExistsError(f"{path} already exists{case}; choose another name or allow overwriting")
        weights = self.lora(identity, base)
        return save_identity_lora(weights.tensors, path, identity, weight, base, overwrite=overwrite,
                                  extra={"sources": ", ".join(identity.source_names), **(extra or {})})
