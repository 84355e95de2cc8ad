"""``ModelManager``: the one loaded HyperLoRA model (one variant resident at a time), the face models
(insightface and CLIP, one set for every variant), the first-use download, and which checkpoint made
an identity.

The face models are their own object (``model.face_models.FaceModels``): the likeness score and the
photo check use them without loading the 3 GB hypernetwork, and changing the detector size or the
ONNX providers reloads only the analyzer. Both objects get the host's ``free_memory`` hook, called
before anything of theirs goes to a GPU (at load time too).

Checkpoint inspections are cached per folder and file version (name, size, mtime of every file
in it), so finding the model of an identity per generated image reads no weights; a checkpoint
replaced on disk is inspected again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable

import torch

from ...download import download_models
from ...errors import DownloadError, HyperLoRAError, MissingModelsError
from ...identities.identity import Identity
from ...model.checkpoint import CheckpointSpec, inspect_checkpoint
from ...model.engine import HyperLoRAModel
from ...model.face_models import FaceModels
from ...model.locations import DEFAULT_VARIANT, ModelLocations
from ...model.precision import resolve_precision
from .config import Progress, ServiceConfig, no_progress

log = logging.getLogger(__name__)


def folder_version(folder: Path) -> tuple:
    """(name, size, mtime_ns) of every file in ``folder``, sorted: changes when any file does."""
    try:
        entries = [e for e in os.scandir(folder) if e.is_file()]
    except OSError:
        return ()
    return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries))


def _record(timings: dict[str, float] | None, stage: str, start: float) -> None:
    if timings is not None:
        timings[stage] = time.perf_counter() - start


class ModelManager:
    """Loads, downloads and unloads the models; ``lock`` serialises the work that uses them.

    ``free_memory(bytes)``: optional host hook called before anything goes to a GPU, so the
    host's memory manager can make room (Forge).
    """

    def __init__(self, config: Callable[[], ServiceConfig],
                 free_memory: Callable[[int], None] | None = None) -> None:
        self._config = config
        self._free_memory = free_memory
        self.lock = threading.RLock()
        self._model: HyperLoRAModel | None = None
        self._model_key: tuple | None = None
        self._faces: FaceModels | None = None
        self._faces_key: tuple | None = None
        self._specs: dict[Path, tuple[tuple, CheckpointSpec]] = {}

    @property
    def locations(self) -> ModelLocations:
        return ModelLocations.under(self._config().models_dir)

    def variants(self) -> list[str]:
        """Checkpoint folders on disk; the default variant (downloadable) when there are none."""
        return self.locations.variants() or [DEFAULT_VARIANT]

    def inspect(self, variant: str) -> CheckpointSpec:
        """``inspect_checkpoint`` of ``variant``, cached until a file in its folder changes."""
        folder = self.locations.variant_dir(variant)
        version = folder_version(folder)
        with self.lock:
            cached = self._specs.get(folder)
            if cached is not None and cached[0] == version:
                return cached[1]
            spec = inspect_checkpoint(folder)
            self._specs[folder] = (version, spec)
            return spec

    @property
    def loaded_model(self) -> HyperLoRAModel | None:
        """The hypernetwork in memory, or None (nothing loaded it yet, or it was unloaded)."""
        return self._model

    def face_models(self) -> FaceModels:
        """The face models for the current settings (made on first use; each model inside loads on
        its own first use). New providers or detector size reload only the analyzer."""
        cfg = self._config()
        key = (str(ModelLocations.under(cfg.models_dir).root), cfg.device, cfg.dtype)
        with self.lock:
            if self._faces is None or self._faces_key != key:
                self._faces = FaceModels(ModelLocations.under(cfg.models_dir), resolve_precision(cfg.device, cfg.dtype),
                                         cfg.providers, cfg.det_size, cfg.offload, self._free_memory)
                self._faces_key = key
            else:
                self._faces.configure(cfg.providers, cfg.det_size)
                self._faces.set_offload(cfg.offload)
            return self._faces

    def model(self, variant: str | None = None, progress: Progress = no_progress,
              timings: dict[str, float] | None = None) -> HyperLoRAModel:
        """The loaded model of ``variant`` (default: the first on disk); loads, and downloads
        missing or damaged files on first use when allowed (``progress`` shows the download per
        chunk). Raises ``MissingModelsError`` otherwise (``DownloadError`` when the download failed).
        ``timings`` receives "download" and "model load" (seconds) when they happen."""
        cfg = self._config()
        locs = ModelLocations.under(cfg.models_dir)
        variant = variant or self.variants()[0]
        key = (str(locs.variant_dir(variant)), cfg.device, cfg.dtype)
        with self.lock:
            faces = self.face_models()
            if self._model is not None and self._model_key == key and self._model.face_models is faces:
                self._model.set_offload(cfg.offload)
                return self._model
            if locs.missing_files(variant) or locs.damaged_files(variant):
                if not cfg.allow_download:
                    locs.check(variant)  # raises with the list of files and folders
                t = time.perf_counter()
                self._download(locs, variant, progress)
                _record(timings, "download", t)
            progress(0.15, f"Loading HyperLoRA ({variant})")
            self._drop_model()
            t = time.perf_counter()
            self._model = HyperLoRAModel(self.inspect(variant), faces.precision, offload=cfg.offload,
                                         face_models=faces, make_room=self._free_memory)
            self._model_key = key
            _record(timings, "model load", t)
            return self._model

    @staticmethod
    def _download(locs: ModelLocations, variant: str, progress: Progress) -> None:
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

    def _drop_model(self) -> None:
        self._model = None
        self._model_key = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def unload(self) -> None:
        """Drop the loaded hypernetwork and face models (frees their RAM / VRAM)."""
        with self.lock:
            self._faces = None
            self._faces_key = None
            self._drop_model()

    def model_for(self, identity: Identity) -> HyperLoRAModel:
        """The model whose weights made ``identity`` (by fingerprint, preferring its variant)."""
        locs = self.locations
        present = locs.variants()
        candidates = [v for v in present if v == identity.variant] + [v for v in present if v != identity.variant]
        for variant in candidates:
            try:
                if self.inspect(variant).fingerprint == identity.model_fingerprint:
                    return self.model(variant)
            except HyperLoRAError as exc:
                log.warning("HyperLoRA: skipping %s: %s", variant, exc)
        raise HyperLoRAError(
            f"identity {identity.name!r} was made with {identity.variant!r}, which is not in "
            f"{locs.hyper_lora} (or has different weights now); put that checkpoint back or re-create "
            "the identity")
