"""HyperLoRAService: what the panel, the prompt tag and the HTTP API do, independent of the host.

It owns the loaded HyperLoRA model (one variant resident at a time), the identity store and a
small cache of expanded LoRA weights. Host adapters (``a1111``, ``forge``) only turn the
weights it returns into the host's own LoRA objects. Settings are read through ``config()``
on every call, so changes in the WebUI settings apply without a restart.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..checkpoint import inspect_checkpoint
from ..engine import HyperLoRAModel, Prediction
from ..errors import DownloadError, HyperLoRAError, MissingModelsError
from ..files import path_in, safe_name
from ..identity import Identity
from ..identity_algebra import combine, parse_mix
from ..images import ImageSource
from ..likeness import LikenessScore, face_analyzer, likeness
from ..lora import file_tensors, lora_metadata, save_lora
from ..models import DEFAULT_VARIANT, ModelLocations, download_models, resolve_precision
from ..numerics import own_numerics
from ..photo_check import PhotoCheck, predict_checked
from ..store import IdentityStore
from .tags import Applied, TagRequest

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
LORA_CACHE_SIZE = 4
USER_METADATA_SUFFIX = ".json"  # the host's ExtraNetworksPage user metadata beside the file


@dataclass(frozen=True)
class ServiceConfig:
    """Settings the service reads (the host fills them from its own options)."""

    models_dir: Path
    identities_dir: Path | None = None  # default: <models_dir>/hyper_lora/identities
    device: str = "auto"
    dtype: str = "auto"
    offload: str = "auto"  # auto | resident | offload
    det_size: int = 640
    providers: tuple[str, ...] | None = None
    allow_download: bool = True
    default_weight: float = 0.85
    auto_trigger_words: bool = True
    likeness_infotext: bool = True

    @property
    def identity_folder(self) -> Path:
        return self.identities_dir or Path(self.models_dir) / "hyper_lora" / "identities"


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


@dataclass
class Resolution:
    """What a generation's tags resolve to: weights to apply (with their tag), warnings for
    the generation's comments, and the infotext entries."""

    weights: list[tuple[TagRequest, LoRAWeights]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)


def _no_progress(fraction: float, desc: str) -> None:
    pass


class HyperLoRAService:
    """Thread-safe; GPU work happens under the caller's queue lock (hosts) or this lock.

    ``free_memory(bytes)``: optional host hook called before the model goes to a GPU, so the
    host's memory manager can make room (Forge).
    """

    def __init__(self, config: Callable[[], ServiceConfig],
                 free_memory: Callable[[int], None] | None = None) -> None:
        self._config = config
        self._free_memory = free_memory
        self._lock = threading.RLock()
        self._model: HyperLoRAModel | None = None
        self._model_key: tuple | None = None
        self._loras: OrderedDict[tuple[str, float], LoRAWeights] = OrderedDict()
        self._store: IdentityStore | None = None

    # ---- configuration -------------------------------------------------------------------
    @property
    def config(self) -> ServiceConfig:
        return self._config()

    @property
    def locations(self) -> ModelLocations:
        return ModelLocations.under(self.config.models_dir)

    @property
    def store(self) -> IdentityStore:
        folder = self.config.identity_folder
        if self._store is None or self._store.folder != Path(folder):
            self._store = IdentityStore(folder)
        return self._store

    def variants(self) -> list[str]:
        """Checkpoint folders on disk; the default variant (downloadable) when there are none."""
        return self.locations.variants() or [DEFAULT_VARIANT]

    # ---- model ---------------------------------------------------------------------------
    def model(self, variant: str | None = None, progress: Progress = _no_progress) -> HyperLoRAModel:
        """The loaded model of ``variant`` (default: the first on disk); loads, and downloads
        missing or damaged files on first use when allowed (``progress`` shows the download per
        chunk). Raises ``MissingModelsError`` otherwise (``DownloadError`` when the download failed)."""
        cfg = self.config
        locs = self.locations
        variant = variant or self.variants()[0]
        key = (str(locs.variant_dir(variant)), cfg.device, cfg.dtype, cfg.providers, cfg.det_size)
        with self._lock:
            if self._model is not None and self._model_key == key:
                self._model.set_offload(cfg.offload)
                return self._model
            if locs.missing_files(variant) or locs.damaged_files(variant):
                if not cfg.allow_download:
                    locs.check(variant)  # raises with the list of files and folders
                progress(0.0, f"Downloading HyperLoRA model files ({variant}), first use only")
                try:
                    download_models(locs, variant, progress=True, on_progress=progress)
                except DownloadError:
                    raise  # says why and lists what is still missing
                except Exception as exc:
                    raise MissingModelsError(
                        f"First-use download of {variant} failed ({exc}). Download the files by hand:\n"
                        + "\n".join(f"  - {f} (from {r}) -> {d}" for f, d, r in locs.missing_files(variant)),
                        [(f, str(d)) for f, d, _ in locs.missing_files(variant)]) from exc
                locs.check(variant)  # never load what is still missing or damaged
            progress(0.15, f"Loading HyperLoRA ({variant})")
            self.unload()
            spec = inspect_checkpoint(locs.variant_dir(variant))
            self._model = HyperLoRAModel(spec, resolve_precision(cfg.device, cfg.dtype), offload=cfg.offload,
                                         locations=locs, providers=list(cfg.providers) if cfg.providers else None,
                                         det_size=cfg.det_size)
            self._model_key = key
            return self._model

    def unload(self) -> None:
        """Drop the loaded model (frees its RAM / VRAM)."""
        with self._lock:
            self._model = None
            self._model_key = None
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def model_for(self, identity: Identity) -> HyperLoRAModel:
        """The model whose weights made ``identity`` (by fingerprint, preferring its variant)."""
        locs = self.locations
        candidates = [v for v in locs.variants() if v == identity.variant]
        candidates += [v for v in locs.variants() if v != identity.variant]
        for variant in candidates:
            try:
                if inspect_checkpoint(locs.variant_dir(variant)).fingerprint == identity.model_fingerprint:
                    return self.model(variant)
            except HyperLoRAError as exc:
                log.warning("HyperLoRA: skipping %s: %s", variant, exc)
        raise HyperLoRAError(
            f"identity {identity.name!r} was made with {identity.variant!r}, which is not in "
            f"{locs.hyper_lora} (or has different weights now); put that checkpoint back or re-create "
            "the identity")

    def _gpu_room(self, model: HyperLoRAModel) -> None:
        if self._free_memory is not None and model.precision.device.type == "cuda":
            self._free_memory(model.nbytes())

    # ---- identities ----------------------------------------------------------------------
    def create_identity(self, images: Sequence[ImageSource], name: str, variant: str | None = None,
                        remove_background: bool = True, grayscale: bool = False,
                        image_names: Sequence[str] | None = None, overwrite: bool = False,
                        progress: Progress = _no_progress, drop_flagged: bool = False) -> Prediction:
        """Photos of one person -> stored identity ``name``; ``create_checked`` without the check."""
        return self.create_checked(images, name, variant, remove_background, grayscale, image_names, overwrite,
                                   progress, drop_flagged)[0]

    def create_checked(self, images: Sequence[ImageSource], name: str, variant: str | None = None,
                       remove_background: bool = True, grayscale: bool = False,
                       image_names: Sequence[str] | None = None, overwrite: bool = False,
                       progress: Progress = _no_progress, drop_flagged: bool = False
                       ) -> tuple[Prediction, PhotoCheck]:
        """Photos of one person -> stored identity ``name`` (sanitised) and the photo-set check
        (``drop_flagged``: photos that look like someone else are left out). Raises ``ValueError``
        for a bad name, ``FileExistsError`` for a taken one (unless ``overwrite``),
        ``NoFaceError`` when no photo has a usable face, ``MissingModelsError``."""
        name = safe_name(name)
        taken = self.store.resolve(name)
        if taken is not None and not overwrite:
            raise FileExistsError(f"an identity named {taken!r} already exists; choose another name, "
                                  "or delete or overwrite it")
        if not images:
            raise ValueError("no images given: upload one or more photos of the face")
        with self._lock:
            model = self.model(variant, progress)
            progress(0.4, f"Finding faces in {len(images)} image(s)")
            self._gpu_room(model)
            prediction, check = predict_checked(model, list(images), list(image_names) if image_names else None,
                                                drop_flagged, remove_background=remove_background,
                                                grayscale=grayscale, name=name)
            progress(0.9, "Saving identity")
            self.store.save(prediction.identity, name, overwrite=overwrite)
            return prediction, check

    def mix(self, expression: str, name: str, overwrite: bool = False) -> Identity:
        """Store ``combine(expression)`` over the stored identities as ``name`` (a mix such as
        ``0.6*alice + 0.4*bob`` or a slider ``smiling - neutral``). Raises ``HyperLoRAError`` for
        a bad expression or unknown names, ``FileExistsError`` / ``ValueError`` as ``create_identity``."""
        name = safe_name(name)
        taken = self.store.resolve(name)
        if taken is not None and not overwrite:
            raise FileExistsError(f"an identity named {taken!r} already exists; choose another name, "
                                  "or delete or overwrite it")
        expr = parse_mix(expression)
        identities = {}
        for term, _ in expr.terms:
            try:
                identities[term] = self.identity(term)
            except KeyError:
                continue  # combine names every unknown term
        identity = combine(expr, identities, name)
        self.store.save(identity, name, overwrite=overwrite)
        return self.identity(name)

    def likeness(self, image: ImageSource, identities: Sequence[Identity]) -> list[LikenessScore]:
        """Likeness of ``identities`` (named by ``.name``) in ``image``, with the face analyzer of
        the model that made the first one (loaded if needed)."""
        if not identities:
            return []
        with self._lock:
            return likeness(face_analyzer(self.model_for(identities[0])), image, identities)

    def identity(self, name: str) -> Identity:
        """Stored identity ``name``; ``KeyError`` if unknown, ``HyperLoRAError`` if damaged."""
        return self.store.get(name)

    def find_by_hash(self, identity_hash: str) -> str | None:
        """Name of the stored identity with this hash, or None."""
        good, _ = self.store.load_all()
        return next((n for n, i in good.items() if i.hash == identity_hash), None)

    def rename(self, old: str, new: str) -> str:
        """Rename identity ``old`` (``store.rename``); its Extra Networks card notes follow."""
        stored = self.store.resolve(old)
        renamed = self.store.rename(old, new)
        if stored is not None and stored != renamed:
            self._move_user_metadata(stored, renamed)
        return renamed

    def delete(self, name: str) -> str:
        """Delete identity ``name`` (``store.delete``) and its Extra Networks card notes."""
        gone = self.store.delete(name)
        try:
            self.user_metadata_path(gone).unlink(missing_ok=True)
        except (OSError, ValueError):
            log.warning("HyperLoRA: could not remove the card notes of %r", gone, exc_info=True)
        return gone

    def user_metadata_path(self, name: str) -> Path:
        """``<identities>/NAME.json``: the description and notes the Extra Networks card editor keeps."""
        return path_in(self.config.identity_folder, name, USER_METADATA_SUFFIX)

    def _move_user_metadata(self, old: str, new: str) -> None:
        try:
            src, dst = self.user_metadata_path(old), self.user_metadata_path(new)
            if src.is_file() and not dst.exists():
                src.replace(dst)
        except (OSError, ValueError):
            log.warning("HyperLoRA: could not move the card notes of %r to %r", old, new, exc_info=True)

    # ---- LoRA weights --------------------------------------------------------------------
    def lora(self, identity: Identity, base: float = 0.0) -> LoRAWeights:
        """Expanded weights of ``identity`` with its Base-LoRA baked in at ``base`` (cached). The same
        identity and base give bit-identical tensors in any caller context (``numerics``)."""
        key = (identity.hash, float(base))
        with self._lock:
            if key in self._loras:
                self._loras.move_to_end(key)
                return self._loras[key]
            model = self.model_for(identity)
            self._gpu_room(model)
            with own_numerics():  # a tag expands inside the host's generation context (autocast...)
                tensors = file_tensors(model.expand(identity, base_weight=base))
            suffix = f"_b{base:g}" if base else ""
            weights = LoRAWeights(f"hyperlora_{identity.name}_{identity.hash}{suffix}", identity, base, tensors)
            self._loras[key] = weights
            while len(self._loras) > LORA_CACHE_SIZE:
                self._loras.popitem(last=False)
            return weights

    def resolve(self, requests: Sequence[TagRequest]) -> Resolution:
        """Tags of one generation -> weights, warnings and infotext entries. Never raises for a
        bad tag: unknown names, damaged files and missing models become warnings.

        The same identity tagged more than once (at the same Base-LoRA weight) is applied once at
        the sum of the tags' weights, exactly what stacking the LoRAs would do, with a note saying
        so; tags of one identity at different base weights apply side by side, which is that sum too.
        """
        out = Resolution()
        slots: dict[tuple[str, float], int] = {}  # (hash, base) -> index in out.weights
        parts: dict[int, list[float]] = {}
        for req in requests:
            try:
                identity = self.identity(req.name)
            except KeyError:
                known = ", ".join(self.store.names()[:10]) or "none yet"
                out.warnings.append(f"HyperLoRA: no identity named {req.name!r} (known: {known}); tag ignored")
                continue
            except HyperLoRAError as exc:
                out.warnings.append(f"HyperLoRA: {exc}; tag ignored")
                continue
            base = req.base
            if base and not identity.has_base:
                out.warnings.append(f"HyperLoRA: {identity.name!r} has no Base-LoRA (the checkpoint "
                                    f"{identity.variant} provides none); base weight {base:g} ignored")
                base = 0.0
            slot = slots.get((identity.hash, base))
            if slot is not None:
                parts[slot].append(req.weight)
                total = math.fsum(parts[slot])
                out.weights[slot] = (replace(out.weights[slot][0], weight=total), out.weights[slot][1])
                out.applied[slot] = replace(out.applied[slot], weight=total)
                continue
            try:
                weights = self.lora(identity, base)
            except HyperLoRAError as exc:
                out.warnings.append(f"HyperLoRA: {exc}; tag ignored")
                continue
            slots[(identity.hash, base)] = len(out.weights)
            parts[len(out.weights)] = [req.weight]
            out.weights.append((req, weights))
            out.applied.append(Applied(identity.name, identity.hash, req.weight, base, identity.variant))
        for slot, weights_of_tags in parts.items():
            if len(weights_of_tags) > 1:
                sums = " + ".join(f"{w:g}" for w in weights_of_tags)
                out.warnings.append(f"HyperLoRA: {out.applied[slot].name!r} is tagged {len(weights_of_tags)} times; "
                                    f"applied once at the sum of the weights, {sums} = {out.applied[slot].weight:g}")
        return out

    def save_lora(self, name: str, lora_dir: str | Path, file_name: str | None = None, base: float = 0.0,
                  overwrite: bool = False) -> Path:
        """Write identity ``name`` as a kohya SDXL LoRA ``<lora_dir>/<file_name>.safetensors``
        (default file name: the identity's), with metadata and preview, atomically.
        ``FileExistsError`` if it exists and ``overwrite`` is False."""
        identity = self.identity(name)
        if base and not identity.has_base:
            raise HyperLoRAError(f"{identity.name!r} has no Base-LoRA (the checkpoint provides none)")
        stem = safe_name(file_name or identity.name)
        path = path_in(lora_dir, stem, ".safetensors")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; choose another name or allow overwriting")
        weights = self.lora(identity, base)
        meta = lora_metadata(stem, weights.tensors, {
            "identity": identity.name, "identity_hash": identity.hash, "variant": identity.variant,
            "base_weight": f"{base:g}", "sources": ", ".join(identity.source_names)})
        return save_lora(weights.tensors, path, meta, identity.preview(), overwrite=overwrite)
