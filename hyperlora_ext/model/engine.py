"""The HyperLoRA model: an official checkpoint's weights in memory, features -> coefficient
tokens, and tokens or identities -> kohya SDXL LoRA weights.

Photos -> identity is the photo pipeline's job (``pipeline.PhotoPipeline``, which owns the face
analyzer and CLIP); ``HyperLoRAModel.predict`` hands photos to it. Data flow: photos ->
``photos.faces`` (crops, ArcFace) -> ``encoders`` (CLIP) -> ``hypernet`` (tokens) -> ``Identity``
-> ``lora`` (kohya dict).
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch

from ..errors import HyperLoRAError
from ..identities.identity import Identity, pool_tokens
from ..lora import lora_state_dict, merge_loras
from ..photos.images import ImageSource, InputImage
from .checkpoint import BASE_RESAMPLER_FILE, ID_PROJECTOR_FILE, MODULES_FILE, RESAMPLER_FILE, CheckpointSpec
from .hypernet import BasisBank, IDProjector, Resampler
from .locations import ModelLocations
from .numerics import own_numerics, with_own_numerics
from .pipeline import PhotoPipeline, Prediction
from .precision import Precision
from .safetensors_io import read_tensors, stream_tensors

log = logging.getLogger(__name__)
OFFLOAD_BELOW_BYTES = 16 << 30  # "auto" offloads on GPUs with less memory than this


class HyperLoRAModel:
    """A loaded HyperLoRA checkpoint. Thread-safe: one prediction at a time.

    ``offload`` ("auto", "resident", "offload"): whether the networks go back to the CPU
    after each prediction; "auto" offloads on GPUs with less than 16 GiB.
    """

    def __init__(self, spec: CheckpointSpec, precision: Precision, offload: str = "auto",
                 locations: ModelLocations | None = None, providers: list[str] | None = None,
                 det_size: int = 640) -> None:
        if offload not in ("auto", "resident", "offload"):
            raise ValueError(f"offload must be auto, resident or offload, not {offload!r}")
        self.spec = spec
        self.precision = precision
        self.locations = locations
        self.providers = providers
        self.det_size = det_size
        self._lock = threading.RLock()
        self._attached: list[torch.nn.Module] = []  # follow the networks' placement (CLIP)
        self.offload = self._offload_policy(offload)
        with own_numerics():  # precompute() runs the resampler's first attention at load time
            self._load(self.store_device)
        self.pipeline = PhotoPipeline(self, locations or ModelLocations.for_checkpoint(spec.folder),
                                      providers, det_size)

    # ---- loading -------------------------------------------------------------------------
    def _load(self, store: torch.device) -> None:
        spec, precision = self.spec, self.precision
        self.resampler = self._load_resampler(RESAMPLER_FILE, spec.resampler, store)
        self.base_resampler = (self._load_resampler(BASE_RESAMPLER_FILE, spec.base_resampler, store)
                               if spec.base_resampler else None)
        self.id_projector = None
        if spec.id_projector:
            p = spec.id_projector
            self.id_projector = IDProjector(p.embed_dim, p.num_tokens, p.token_dim)
            self.id_projector.load_state_dict(read_tensors(spec.folder / ID_PROJECTOR_FILE))
            self.id_projector.to(store, precision.compute).eval().requires_grad_(False)
        self.id_bank, self.base_bank = self._load_banks(store)

    def _offload_policy(self, policy: str) -> bool:
        if self.precision.device.type != "cuda" or policy == "resident":
            return False
        if policy == "offload":
            return True
        return torch.cuda.get_device_properties(self.precision.device).total_memory < OFFLOAD_BELOW_BYTES

    def _load_resampler(self, file: str, spec, device: torch.device) -> Resampler:
        with torch.device("meta"):
            module = Resampler(spec)
        module.load_state_dict(read_tensors(self.spec.folder / file), assign=True)
        module.to(device, self.precision.compute).eval().requires_grad_(False)
        module.precompute()
        return module

    def _load_banks(self, device: torch.device) -> tuple[BasisBank, BasisBank | None]:
        """Read the basis file tensor by tensor straight into the stacked banks (basis dtype): the
        RAM this needs is the banks plus one tensor, never a full-precision copy of the file."""
        spec, dtype = self.spec, self.precision.basis
        id_bank = BasisBank(spec.layers, spec.hyper_dim, spec.rank, dtype, device)
        base_bank = BasisBank(spec.layers, spec.hyper_dim, spec.base_rank, dtype, device) if spec.has_base else None
        for key, tensor in stream_tensors(spec.folder / MODULES_FILE):  # "{module}.{proj}.{id|base}_{down|up}_basis"
            module, proj, name = key.split(".")
            kind, direction, _ = name.split("_")
            layer = 4 * int(module) + ("to_q", "to_k", "to_v", "to_out").index(proj)
            (id_bank if kind == "id" else base_bank).fill(layer, direction, tensor)
        return id_bank, base_bank

    # ---- device placement ----------------------------------------------------------------
    def _modules(self) -> list:
        mods = [self.resampler, self.base_resampler, self.id_projector, self.id_bank, self.base_bank]
        return [m for m in mods if m is not None] + self._attached

    @property
    def store_device(self) -> torch.device:
        """Where the weights rest between uses: the CPU in offload mode, else the compute device."""
        return torch.device("cpu") if self.offload else self.precision.device

    def attach(self, module: torch.nn.Module) -> torch.nn.Module:
        """Let ``module`` (the pipeline's CLIP) follow the networks' placement and offloading."""
        module.to(self.store_device)
        self._attached.append(module)
        return module

    def _place(self, device: torch.device) -> None:
        for m in self._modules():
            m.to(device)

    def set_offload(self, policy: str) -> None:
        """Change the offload policy ("auto", "resident", "offload") of a loaded model."""
        if policy not in ("auto", "resident", "offload"):
            raise ValueError(f"offload must be auto, resident or offload, not {policy!r}")
        with self._lock:
            offload = self._offload_policy(policy)
            if offload != self.offload:
                self._place(torch.device("cpu") if offload else self.precision.device)
                self.offload = offload

    def nbytes(self) -> int:
        """Bytes of all loaded weights (what a GPU needs free while they are resident)."""
        modules = [m for m in self._modules() if isinstance(m, torch.nn.Module)]
        total = sum(t.numel() * t.element_size() for m in modules for t in m.parameters())
        return total + sum(b.nbytes for b in (self.id_bank, self.base_bank) if b is not None)

    @contextmanager
    def _on_device(self) -> Iterator[None]:
        """Hold the lock; in offload mode, bring the networks to the GPU and send them back after."""
        with self._lock:
            if self.offload:
                self._place(self.precision.device)
            try:
                yield
            finally:
                if self.offload:
                    self._place(torch.device("cpu"))
                    torch.cuda.empty_cache()

    # ---- features -> tokens -> LoRA --------------------------------------------------------
    @with_own_numerics
    def image_tokens(self, clip_hidden_states: torch.Tensor | None, id_embeddings: torch.Tensor | None,
                     mode: str = "id") -> torch.Tensor:
        """Per-image coefficient tokens (N, Q, K), float32 on the CPU, before pooling.

        ``clip_hidden_states``: penultimate CLIP hidden states (N, T, C) (for ``mode="base"``:
        of the Base crops); ``id_embeddings``: L2-normalised ArcFace embeddings (N, 512).
        """
        dev, dt = self.precision.device, self.precision.compute
        if mode == "base":
            if self.base_resampler is None:
                raise HyperLoRAError(f"{self.spec.variant} has no Base-LoRA ({BASE_RESAMPLER_FILE} and "
                                     "base_*_basis weights are not in the checkpoint)")
            if clip_hidden_states is None:
                raise ValueError("mode='base' needs the CLIP features of the Base crops")
            return self.base_resampler(clip_hidden_states.to(dev, dt)).float().cpu()
        if mode != "id":
            raise ValueError(f"mode must be 'id' or 'base', not {mode!r}")
        conds = []
        if self.id_projector is not None:
            if id_embeddings is None:
                raise ValueError(f"{self.spec.variant} needs ArcFace embeddings (N, 512)")
            conds.append(self.id_projector(id_embeddings.to(dev, dt)))
        if self.spec.uses_clip:
            if clip_hidden_states is None:
                raise ValueError(f"{self.spec.variant} needs CLIP hidden states (N, T, C)")
            conds.append(clip_hidden_states.to(dev, dt))
        if len(conds) == 2 and conds[0].shape[0] != conds[1].shape[0]:
            raise ValueError(f"{conds[1].shape[0]} CLIP feature sets but {conds[0].shape[0]} ArcFace embeddings")
        return self.resampler(*conds).float().cpu()

    @with_own_numerics
    def tokens_to_lora(self, tokens: torch.Tensor, mode: str = "id",
                       device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """Pooled tokens (Q, K) -> kohya LoRA dict (basis dtype, on ``device``)."""
        bank = self.id_bank if mode == "id" else self.base_bank
        if bank is None:
            raise HyperLoRAError(f"{self.spec.variant} has no Base-LoRA weights")
        expected = (8 * len(self.spec.modules), self.spec.hyper_dim)
        if tuple(tokens.shape) != expected:
            raise HyperLoRAError(f"coefficient tokens have shape {tuple(tokens.shape)}, this model needs {expected}")
        weights = bank.mix(tokens, out_device=device)
        return lora_state_dict(self.spec.lora_names, weights, alpha=bank.rank / 2)

    @with_own_numerics
    def features_to_lora(self, clip_hidden_states: torch.Tensor | None, id_embeddings: torch.Tensor | None,
                         mode: str = "id") -> dict[str, torch.Tensor]:
        """Features of N images -> one kohya SDXL LoRA dict (the N images are averaged)."""
        with self._on_device():
            return self.tokens_to_lora(pool_tokens(self.image_tokens(clip_hidden_states, id_embeddings, mode)), mode)

    def check_identity(self, identity: Identity) -> None:
        if identity.model_fingerprint != self.spec.fingerprint:
            raise HyperLoRAError(
                f"identity {identity.name or identity.hash!r} was made with {identity.variant!r} and only fits "
                f"those weights; the loaded model is {self.spec.variant!r} (different weights). Re-create it.")

    @with_own_numerics
    def expand(self, identity: Identity, base_weight: float = 0.0,
               device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """Identity -> kohya LoRA dict (rank r); a non-zero ``base_weight`` bakes the Base-LoRA in. A
        slider (``identities.algebra``) expands to rank 2r whose delta is exactly delta(A) - delta(B)."""
        self.check_identity(identity)
        with self._on_device():
            lora = self._expand_tokens(identity.tokens, identity.base_tokens, base_weight, device)
            if identity.is_slider:
                negative = self._expand_tokens(identity.negative_tokens, identity.negative_base_tokens,
                                               base_weight, device)
                lora = merge_loras(lora, negative, -1.0)
            return lora

    def _expand_tokens(self, tokens: torch.Tensor, base_tokens: torch.Tensor | None, base_weight: float,
                       device: str | torch.device) -> dict[str, torch.Tensor]:
        lora = self.tokens_to_lora(tokens, "id", device)
        if base_weight:
            if base_tokens is None or self.base_bank is None:
                raise HyperLoRAError("this identity has no Base-LoRA (the checkpoint provides none)")
            lora = merge_loras(lora, self.tokens_to_lora(base_tokens, "base", device), base_weight)
        return lora

    # ---- photos -> identity (the pipeline's job) -------------------------------------------
    def predict(self, images: Sequence[ImageSource | InputImage], remove_background: bool = True,
                grayscale: bool = False, base: bool | None = None, name: str = "",
                names: Sequence[str] | None = None) -> Prediction:
        """Photos of one person -> Prediction (``PhotoPipeline.predict``)."""
        return self.pipeline.predict(images, remove_background, grayscale, base, name, names)

    def clear_cache(self) -> None:
        """Forget the pipeline's per-photo results (the next prediction recomputes them)."""
        self.pipeline.clear_cache()
