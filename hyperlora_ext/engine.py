"""The HyperLoRA model: load an official checkpoint, turn features or photos into an Identity,
and expand identities into kohya SDXL LoRA weights.

Data flow: images -> faces (crops, ArcFace) -> encoders (CLIP) -> hypernet (tokens)
-> Identity -> lora (kohya dict).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch

from .checkpoint import (
    BASE_RESAMPLER_FILE,
    ID_PROJECTOR_FILE,
    MODULES_FILE,
    RESAMPLER_FILE,
    CheckpointSpec,
    read_tensors,
    stream_tensors,
)
from .encoders import ClipEncoder
from .errors import HyperLoRAError, ImageError, NoFaceError
from .faces import FaceAnalyzer, FaceResult
from .hypernet import BasisBank, IDProjector, Resampler, pool_tokens
from .identity import Identity
from .images import ImageSource, InputImage, load_image
from .lora import lora_state_dict, merge_loras
from .models import ModelLocations, Precision
from .numerics import own_numerics, with_own_numerics

log = logging.getLogger(__name__)
OFFLOAD_BELOW_BYTES = 16 << 30  # "auto" offloads on GPUs with less memory than this
CACHE_SIZE = 64


@dataclass
class Prediction:
    """Result of ``HyperLoRAModel.predict``: the identity, the faces used (crops for a UI),
    images skipped with the reason, per-stage timings in seconds, and cache hits."""

    identity: Identity
    faces: list[FaceResult]
    skipped: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    cache_hits: int = 0


class _Timer:
    def __init__(self, sync_device: torch.device) -> None:
        self.times: dict[str, float] = {}
        self.cuda = sync_device.type == "cuda"

    def lap(self, stage: str, start: float) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.times[stage] = self.times.get(stage, 0.0) + now - start
        return now


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
        # (image digest, *options) -> ((id tokens (Q, K), base tokens or None), face)
        self._cache: OrderedDict[tuple, tuple[tuple, FaceResult]] = OrderedDict()
        self.clip: ClipEncoder | None = None
        self.faces: FaceAnalyzer | None = None
        self.offload = self._offload_policy(offload)
        with own_numerics():  # precompute() runs the resampler's first attention at load time
            self._load(torch.device("cpu") if self.offload else precision.device)

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
        return [m for m in mods if m is not None]

    def _place(self, device: torch.device) -> None:
        for m in self._modules():
            m.to(device)
        if self.clip is not None:
            self.clip.to(device)

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
        if self.clip is not None:
            modules.append(self.clip.model)
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
        """Identity -> kohya LoRA dict; a non-zero ``base_weight`` bakes the Base-LoRA in. A slider
        (``identity_algebra``) expands to rank 2r whose delta is exactly delta(A) - delta(B)."""
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

    # ---- photos -> identity --------------------------------------------------------------
    def _ensure_stages(self) -> None:
        locs = self.locations or ModelLocations.for_checkpoint(self.spec.folder)
        if self.faces is None:
            self.faces = FaceAnalyzer(locs.antelopev2, providers=self.providers, det_size=self.det_size)
        if self.clip is None and (self.spec.uses_clip or self.spec.has_base):
            store = torch.device("cpu") if self.offload else self.precision.device
            clip = ClipEncoder(locs.clip_vit, locs.clip_processor, store, self.precision.compute)
            expected = self.spec.resampler.embedding_dim_2 or self.spec.resampler.embedding_dim
            if self.spec.uses_clip and clip.hidden_size != expected:
                raise HyperLoRAError(f"CLIP in {locs.clip_vit} has width {clip.hidden_size}; "
                                     f"{self.spec.variant} expects {expected} (CLIP ViT-L/14)")
            self.clip = clip

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    @with_own_numerics
    def predict(self, images: Sequence[ImageSource | InputImage], remove_background: bool = True,
                grayscale: bool = False, base: bool | None = None, name: str = "",
                names: Sequence[str] | None = None) -> Prediction:
        """Photos of one person -> Prediction (Identity averaged over every image with a face).

        Images without a face, or unreadable, are skipped and reported by name; if none is
        usable, ``NoFaceError`` lists each reason. ``base`` (default: when the checkpoint has a
        Base-LoRA) also predicts Base tokens. Repeated images come from a content cache.
        """
        base = self.spec.has_base if base is None else base
        if base and not self.spec.has_base:
            raise HyperLoRAError(f"{self.spec.variant} has no Base-LoRA")
        with self._lock:
            timer = _Timer(self.precision.device)
            t = time.perf_counter()
            inputs, skipped = [], {}
            for i, img in enumerate(images):
                label = names[i] if names and i < len(names) else None
                try:
                    inputs.append(img if isinstance(img, InputImage) else load_image(img, label))
                except ImageError as exc:
                    skipped[label or f"image {i + 1}"] = str(exc)
            t = timer.lap("decode", t)
            self._ensure_stages()
            options = (remove_background, grayscale, base)
            results: list[tuple[torch.Tensor | None, FaceResult]] = []
            hits = 0
            for img in inputs:
                key = (img.digest, *options)
                if key in self._cache:
                    self._cache.move_to_end(key)
                    results.append(self._cache[key])
                    hits += 1
                    continue
                try:
                    face = self.faces.analyze(img, remove_background, grayscale, base)
                except ImageError as exc:  # this photo only; the others still count
                    skipped[img.name] = str(exc)
                    continue
                if face is None:
                    skipped[img.name] = "no face found"
                else:
                    results.append((None, face))
            t = timer.lap("faces", t)
            if not results:
                detail = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no images given"
                raise NoFaceError(f"No usable face in the images ({detail}). Use clear, front-facing photos.",
                                  skipped)
            with self._on_device():
                new = [face for tokens, face in results if tokens is None]
                if new:
                    self._predict_new(new, options, timer)
                    results = [(self._cache[(f.digest, *options)][0], f) for _, f in results]
                t = time.perf_counter()
                id_tokens = pool_tokens(torch.stack([tok[0] for tok, _ in results]))
                base_tokens = pool_tokens(torch.stack([tok[1] for tok, _ in results])) if base else None
                timer.lap("pool", t)
            faces = [face for _, face in results]
            identity = Identity(
                tokens=id_tokens, base_tokens=base_tokens, variant=self.spec.variant,
                model_fingerprint=self.spec.fingerprint, name=name,
                source_names=tuple(f.name for f in faces), source_digests=tuple(f.digest for f in faces),
                options={"remove_background": remove_background, "grayscale": grayscale, "base": base},
                crops=[f.clip_image for f in faces],
                embedding=torch.from_numpy(np.mean([f.embedding for f in faces], axis=0, dtype=np.float32)),
            )
            return Prediction(identity, faces, skipped, timer.times, hits)

    def _predict_new(self, faces: list[FaceResult], options: tuple, timer: _Timer) -> None:
        """Run CLIP and the hypernetwork on new faces; store per-image tokens in the cache."""
        base = options[-1]
        t = time.perf_counter()
        clip = self.clip([f.clip_image for f in faces]) if self.spec.uses_clip else None
        base_clip = self.clip([f.base_image for f in faces]) if base else None
        t = timer.lap("clip", t)
        ids = torch.from_numpy(np.stack([f.embedding for f in faces]))
        id_tokens = self.image_tokens(clip, ids, "id")
        base_tokens = self.image_tokens(base_clip, None, "base") if base else None
        timer.lap("hypernet", t)
        for i, face in enumerate(faces):
            base_i = None if base_tokens is None else base_tokens[i]
            self._cache[(face.digest, *options)] = ((id_tokens[i], base_i), face)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
