"""The HyperLoRA model: an official checkpoint's weights in memory and their placement,
features -> coefficient tokens, and tokens or identities -> kohya SDXL LoRA weights.

``HyperLoRAModel`` holds the resampler(s), the ID projector and the basis banks; its ``placement``
(``model.placement``) decides where they rest and run, makes room before they go to a GPU and moves
only what a call uses (predicting: the networks; expanding: the bases). Photos -> identity is the
photo pipeline's job (``pipeline.PhotoPipeline``), which composes this model with the face models
(``face_models.FaceModels``: insightface and CLIP, which need no hypernetwork); ``predict`` hands
photos to it. Data flow: photos -> ``photos.faces`` (crops, ArcFace) -> ``encoders`` (CLIP) ->
``hypernet`` (tokens) -> ``Identity`` -> ``lora`` (kohya dict).
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import Callable, Sequence, cast

import torch

from ..errors import HyperLoRAError
from ..identities.identity import Identity, pool_tokens
from ..lora import lora_state_dict, merge_loras
from ..photos.images import ImageSource, InputImage
from .checkpoint import BASE_RESAMPLER_FILE, ID_PROJECTOR_FILE, MODULES_FILE, RESAMPLER_FILE, CheckpointSpec
from .face_models import FaceModels
from .hypernet import BasisBank, IDProjector, Resampler, ResamplerSpec
from .locations import ModelLocations
from .numerics import own_numerics, with_own_numerics
from .pipeline import PhotoPipeline, Prediction
from .placement import OFFLOAD_BELOW_BYTES, Placement, decide_offload
from .precision import Precision
from .safetensors_io import read_tensors, stream_tensors

log = logging.getLogger(__name__)
__all__ = ["OFFLOAD_BELOW_BYTES", "HyperLoRAModel"]
# The placement's parts, by the calls that use them.
PARTS = {"networks": ("resampler", "base resampler", "id projector"), "bases": ("id bases", "base bases")}


class HyperLoRAModel:
    """A loaded HyperLoRA checkpoint. Thread-safe: every call that runs the weights holds the
    placement's lock, so one runs at a time.

    ``offload`` ("auto", "resident", "offload"): whether the weights rest on the CPU between uses;
    "auto" offloads on CUDA GPUs with less than 16 GiB. ``make_room(bytes)``: optional host hook,
    called before weights go to a GPU (also at load time). ``face_models``: the insightface and CLIP
    models ``predict`` uses (default: made from ``locations``, ``providers`` and ``det_size``, loaded
    on first use).
    """

    def __init__(self, spec: CheckpointSpec, precision: Precision, offload: str = "auto",
                 locations: ModelLocations | None = None, providers: list[str] | None = None,
                 det_size: int = 640, *, face_models: FaceModels | None = None,
                 make_room: Callable[[int], None] | None = None) -> None:
        self.spec = spec
        self.precision = precision
        self.placement = Placement(precision.device, decide_offload(precision.device, offload), make_room)
        with own_numerics():  # the resampler's first attention is precomputed at load time
            self._load()
        self.face_models = face_models or FaceModels(
            locations or ModelLocations.for_checkpoint(spec.folder), precision, providers, det_size, offload,
            make_room)
        self.pipeline = PhotoPipeline(self.face_models, self)

    # ---- loading -------------------------------------------------------------------------
    def _load(self) -> None:
        spec, compute = self.spec, self.precision.compute
        self.resampler = self._load_resampler("resampler", RESAMPLER_FILE, spec.resampler)
        self.base_resampler = (self._load_resampler("base resampler", BASE_RESAMPLER_FILE, spec.base_resampler)
                               if spec.base_resampler else None)
        self.id_projector = None
        if spec.id_projector:
            p = spec.id_projector
            projector = IDProjector(p.embed_dim, p.num_tokens, p.token_dim)
            projector.load_state_dict(read_tensors(spec.folder / ID_PROJECTOR_FILE))
            self.id_projector = self.placement.place("id projector", projector.eval().requires_grad_(False), compute)
        self.id_bank, self.base_bank = self._load_banks()

    def _load_resampler(self, name: str, file: str, spec: ResamplerSpec) -> Resampler:
        """On the CPU in the compute dtype, precomputed there (``placement``), then placed."""
        with torch.device("meta"):
            module = Resampler(spec)
        module.load_state_dict(read_tensors(self.spec.folder / file), assign=True)
        module.to(dtype=self.precision.compute).eval().requires_grad_(False)
        self.placement.precompute(name, module.precompute)
        return self.placement.place(name, module, self.precision.compute)

    def _load_banks(self) -> tuple[BasisBank, BasisBank | None]:
        """Read the basis file tensor by tensor straight into the stacked banks (basis dtype), allocated
        where they rest (room made first): the RAM this needs is the banks plus one tensor, never a
        full-precision copy of the file."""
        spec, dtype = self.spec, self.precision.basis
        # a checkpoint has a base rank whenever it has Base-LoRA (``inspect_checkpoint``)
        kinds = [("id", spec.rank)] + ([("base", cast(int, spec.base_rank))] if spec.has_base else [])
        banks = {}
        for kind, rank in kinds:
            size = BasisBank(spec.layers, spec.hyper_dim, rank, dtype, "meta").nbytes
            device = self.placement.load_device(f"{kind} bases", size, dtype)
            banks[kind] = BasisBank(spec.layers, spec.hyper_dim, rank, dtype, device)
        for key, tensor in stream_tensors(spec.folder / MODULES_FILE):  # "{module}.{proj}.{id|base}_{down|up}_basis"
            module, proj, name = key.split(".")
            kind, direction, _ = name.split("_")
            layer = 4 * int(module) + ("to_q", "to_k", "to_v", "to_out").index(proj)
            banks[kind].fill(layer, direction, tensor)
        for kind, bank in banks.items():
            self.placement.add(f"{kind} bases", bank)
        return banks["id"], banks.get("base")

    # ---- placement -------------------------------------------------------------------------
    def set_offload(self, policy: str) -> None:
        """Change the offload policy ("auto", "resident", "offload") of a loaded model."""
        self.placement.set_offload(decide_offload(self.precision.device, policy))

    def on_device(self, *groups: str) -> AbstractContextManager[None]:
        """Hold the lock with the weights of ``groups`` ("networks": resampler(s) and projector;
        "bases": the basis banks) on the compute device for the block; nested uses move nothing."""
        return self.placement.use(*(part for group in groups for part in PARTS[group]))

    # ---- features -> tokens -> LoRA --------------------------------------------------------
    @with_own_numerics
    def image_tokens(self, clip_hidden_states: torch.Tensor | None, id_embeddings: torch.Tensor | None,
                     mode: str = "id") -> torch.Tensor:
        """Per-image coefficient tokens (N, Q, K), float32 on the CPU, before pooling.

        ``clip_hidden_states``: penultimate CLIP hidden states (N, T, C) (for ``mode="base"``:
        of the Base crops); ``id_embeddings``: L2-normalised ArcFace embeddings (N, 512).
        """
        with self.on_device("networks"):
            return self._image_tokens(clip_hidden_states, id_embeddings, mode)

    def _image_tokens(self, clip_hidden_states: torch.Tensor | None, id_embeddings: torch.Tensor | None,
                      mode: str) -> torch.Tensor:
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
        with self.on_device("bases"):
            weights = bank.mix(tokens, out_device=device)
        return lora_state_dict(self.spec.lora_names, weights, alpha=bank.rank / 2)

    @with_own_numerics
    def features_to_lora(self, clip_hidden_states: torch.Tensor | None, id_embeddings: torch.Tensor | None,
                         mode: str = "id") -> dict[str, torch.Tensor]:
        """Features of N images -> one kohya SDXL LoRA dict (the N images are averaged)."""
        with self.on_device("networks", "bases"):
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
        with self.on_device("bases"):
            lora = self._expand_tokens(identity.tokens, identity.base_tokens, base_weight, device)
            if identity.negative_tokens is not None:  # a slider (``Identity.is_slider``)
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
