"""The photo pipeline: photos of one person -> ``Identity``, for one loaded model.

Stages, each timed (``Prediction.timings``, seconds): decode (``photos.images``), face models
(loading the insightface pack, first use only), clip load (first use only), faces (``photos.faces``:
detection, landmarks, crops, ArcFace), clip (``encoders``), hypernet (the model's resampler),
pool. Per-photo tokens are kept in a small content cache keyed by the pixel digest and the
options, so a photo seen before costs no face analysis, CLIP or hypernetwork pass.

``PhotoPipeline`` owns the face analyzer and CLIP (both created on first use; CLIP follows the
model's device placement through ``HyperLoRAModel.attach``). The likeness tools use the same face
analyzer (``face_analyzer()``). ``predict_checked`` adds the photo-set check.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from ..errors import HyperLoRAError, ImageError, NoFaceError
from ..identities.identity import Identity, pool_tokens
from ..photos.faces import FaceAnalyzer, FaceResult
from ..photos.images import ImageSource, InputImage, load_image
from ..photos.photo_check import FLAG_BELOW, PhotoCheck, check_embeddings
from .encoders import ClipEncoder
from .locations import ModelLocations
from .numerics import with_own_numerics

if TYPE_CHECKING:  # annotations only: the model creates its pipeline
    from .engine import HyperLoRAModel

CACHE_SIZE = 64  # photos whose tokens are kept


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


class PhotoPipeline:
    """Photos -> Identity for ``model``; ``locations`` finds antelopev2 and CLIP. Thread-safe
    (runs under the model's lock)."""

    def __init__(self, model: HyperLoRAModel, locations: ModelLocations, providers: list[str] | None = None,
                 det_size: int = 640) -> None:
        self.model = model
        self.locations = locations
        self.providers = providers
        self.det_size = det_size
        self.clip: ClipEncoder | None = None
        self._faces: FaceAnalyzer | None = None
        # (image digest, *options) -> ((id tokens (Q, K), base tokens or None), face)
        self._cache: OrderedDict[tuple, tuple[tuple, FaceResult]] = OrderedDict()

    def face_analyzer(self) -> FaceAnalyzer:
        """The antelopev2 analyzer (loaded on first use; ``MissingModelsError`` when absent)."""
        if self._faces is None:
            self._faces = FaceAnalyzer(self.locations.antelopev2, providers=self.providers,
                                       det_size=self.det_size)
        return self._faces

    def _clip(self) -> ClipEncoder | None:
        spec, model = self.model.spec, self.model
        if self.clip is None and (spec.uses_clip or spec.has_base):
            locs = self.locations
            clip = ClipEncoder(locs.clip_vit, locs.clip_processor, model.store_device, model.precision.compute)
            expected = spec.resampler.embedding_dim_2 or spec.resampler.embedding_dim
            if spec.uses_clip and clip.hidden_size != expected:
                raise HyperLoRAError(f"CLIP in {locs.clip_vit} has width {clip.hidden_size}; "
                                     f"{spec.variant} expects {expected} (CLIP ViT-L/14)")
            model.attach(clip.model)
            self.clip = clip
        return self.clip

    def clear_cache(self) -> None:
        with self.model._lock:
            self._cache.clear()

    @with_own_numerics
    def predict(self, images: Sequence[ImageSource | InputImage], remove_background: bool = True,
                grayscale: bool = False, base: bool | None = None, name: str = "",
                names: Sequence[str] | None = None) -> Prediction:
        """Photos of one person -> Prediction (Identity averaged over every image with a face).

        Images without a face, or unreadable, are skipped and reported by name; if none is
        usable, ``NoFaceError`` lists each reason. ``base`` (default: when the checkpoint has a
        Base-LoRA) also predicts Base tokens. Repeated images come from the content cache.
        """
        model, spec = self.model, self.model.spec
        base = spec.has_base if base is None else base
        if base and not spec.has_base:
            raise HyperLoRAError(f"{spec.variant} has no Base-LoRA")
        with model._lock:
            timer = _Timer(model.precision.device)
            t = time.perf_counter()
            inputs, skipped = [], {}
            for i, img in enumerate(images):
                label = names[i] if names and i < len(names) else None
                try:
                    inputs.append(img if isinstance(img, InputImage) else load_image(img, label))
                except ImageError as exc:
                    skipped[label or f"image {i + 1}"] = str(exc)
            t = timer.lap("decode", t)
            if self._faces is None:
                self.face_analyzer()
                t = timer.lap("face models", t)
            if self.clip is None and self._clip() is not None:
                t = timer.lap("clip load", t)
            faces_stage = self.face_analyzer()
            options = (remove_background, grayscale, base)
            results: list[tuple[tuple | None, FaceResult]] = []
            hits = 0
            for img in inputs:
                key = (img.digest, *options)
                if key in self._cache:
                    self._cache.move_to_end(key)
                    results.append(self._cache[key])
                    hits += 1
                    continue
                try:
                    face = faces_stage.analyze(img, remove_background, grayscale, base)
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
            with model._on_device():
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
                tokens=id_tokens, base_tokens=base_tokens, variant=spec.variant,
                model_fingerprint=spec.fingerprint, name=name,
                source_names=tuple(f.name for f in faces), source_digests=tuple(f.digest for f in faces),
                options={"remove_background": remove_background, "grayscale": grayscale, "base": base},
                crops=[f.clip_image for f in faces],
                embedding=torch.from_numpy(np.mean([f.embedding for f in faces], axis=0, dtype=np.float32)),
            )
            return Prediction(identity, faces, skipped, timer.times, hits)

    def _predict_new(self, faces: list[FaceResult], options: tuple, timer: _Timer) -> None:
        """Run CLIP and the hypernetwork on new faces; store per-image tokens in the cache."""
        model, base = self.model, options[-1]
        t = time.perf_counter()
        clip = self.clip([f.clip_image for f in faces]) if model.spec.uses_clip else None
        base_clip = self.clip([f.base_image for f in faces]) if base else None
        t = timer.lap("clip", t)
        ids = torch.from_numpy(np.stack([f.embedding for f in faces]))
        id_tokens = model.image_tokens(clip, ids, "id")
        base_tokens = model.image_tokens(base_clip, None, "base") if base else None
        timer.lap("hypernet", t)
        for i, face in enumerate(faces):
            base_i = None if base_tokens is None else base_tokens[i]
            self._cache[(face.digest, *options)] = ((id_tokens[i], base_i), face)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)


def predict_checked(model: HyperLoRAModel, images: Sequence[ImageSource | InputImage],
                    names: Sequence[str] | None = None, drop_flagged: bool = False,
                    threshold: float = FLAG_BELOW, **predict_options) -> tuple[Prediction, PhotoCheck]:
    """``model.predict`` plus the photo check; with ``drop_flagged`` the identity is predicted
    again from the photos that passed. That second pass finds every stage in the engine's
    content cache (keyed by pixel digest), so it only pools. Raises ``HyperLoRAError`` when
    ``drop_flagged`` would leave no photo. ``predict_options``: the rest of ``predict``'s."""
    inputs = []
    for i, img in enumerate(images):
        label = names[i] if names and i < len(names) else None
        # decode here once so both passes share the pixels; bad images are left to predict to report
        try:
            inputs.append(img if isinstance(img, InputImage) else load_image(img, label))
        except HyperLoRAError:
            inputs.append(img)
    pred = model.predict(inputs, names=names, **predict_options)
    # faces follow the inputs' order, minus those skipped; match by pixel digest (cached faces
    # keep the name of the image they were first computed for, the input has the current one)
    matched, j = [], 0
    for inp in inputs:
        if isinstance(inp, InputImage) and j < len(pred.faces) and pred.faces[j].digest == inp.digest:
            matched.append((inp, pred.faces[j]))
            j += 1
    check = check_embeddings([inp.name for inp, _ in matched],
                             np.stack([f.embedding for _, f in matched]), threshold)
    if not (drop_flagged and check.flagged):
        return pred, check
    keep = [inp for (inp, _), score in zip(matched, check.photos) if not score.flagged]
    if not keep:
        raise HyperLoRAError(f"every photo was flagged ({', '.join(check.flagged)}): they do not look like one "
                             "person, so none can be dropped; choose the photos yourself")
    again = model.predict(keep, **predict_options)
    again.skipped.update(pred.skipped)
    again.skipped.update({n: f"left out: similarity to the other photos below {threshold}" for n in check.flagged})
    return again, check
