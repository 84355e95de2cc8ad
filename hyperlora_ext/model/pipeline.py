"""The photo pipeline: photos of one person -> ``Identity``, composing the face models with a
loaded hypernetwork.

Stages, each timed (``Prediction.timings``, seconds): decode (``photos.images``), face models
(loading the insightface pack, first use only), faces (``photos.faces``: detection, landmarks,
crops, ArcFace), clip load (first use only), clip (``encoders``), hypernet (the resampler), pool.
Photos are decoded and analysed one at a time (their pixels are dropped once their face is found)
and at most ``MAX_PHOTOS`` make one identity.

Each photo's result (its face, then its tokens) is kept in a small cache keyed by its pixel digest,
the options and the face models' version, so a photo seen before costs no face analysis, CLIP or
hypernetwork pass; it is reported under the name it has in this request. A photo's tokens are
computed on their own (batches of one) and the photos are pooled in digest order, so an identity
depends only on the set of photos, never on their order, the other photos of a request or what was
cached before.

``PhotoPipeline`` uses only the public side of its two parts: ``FaceModels`` (analyzer, CLIP) and
``HyperLoRAModel`` (``on_device``, ``image_tokens``). ``predict_checked`` adds the photo-set check, which
needs the face results only: photos it drops never reach CLIP or the hypernetwork.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Sequence, cast

import numpy as np
import torch
from PIL import Image

from ..errors import HyperLoRAError, ImageError, NoFaceError
from ..identities.identity import Identity, pool_tokens
from ..photos.faces import FaceResult
from ..photos.images import ImageSource, InputImage, load_image, photo_count_problem
from ..photos.photo_check import FLAG_BELOW, PhotoCheck, check_embeddings
from .face_models import FaceModels
from .numerics import with_own_numerics

if TYPE_CHECKING:  # annotations only: the model creates its pipeline
    from .engine import HyperLoRAModel

CACHE_SIZE = 64  # photos whose results are kept


@dataclass
class Prediction:
    """Result of ``HyperLoRAModel.predict``: the identity, the faces used (crops for a UI),
    images skipped with the reason, per-stage timings in seconds, and cache hits."""

    identity: Identity
    faces: list[FaceResult]
    skipped: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    cache_hits: int = 0


_Tokens = tuple[torch.Tensor, torch.Tensor | None]  # id (Q, K), base (Q, K) or None


@dataclass
class _Entry:
    """A photo's cached result: its face (named as when first seen) and, once computed, its tokens
    (id (Q, K), base (Q, K) or None), float32 on the CPU."""

    face: FaceResult
    tokens: _Tokens | None = None


@dataclass
class _Photo:
    """A photo of this request: its face named as in this request, and its (shared) cache entry."""

    face: FaceResult
    entry: _Entry


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
    """Photos -> Identity with ``faces`` and ``hypernet``. Thread-safe: the cache has its own lock;
    the models run under their placements' locks (face models first, then the hypernetwork)."""

    def __init__(self, faces: FaceModels, hypernet: HyperLoRAModel) -> None:
        self.faces = faces
        self.hypernet = hypernet
        self._cache: OrderedDict[tuple, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def _options(self, remove_background: bool, grayscale: bool, base: bool | None) -> tuple[bool, bool, bool]:
        spec = self.hypernet.spec
        base = spec.has_base if base is None else base
        if base and not spec.has_base:
            raise HyperLoRAError(f"{spec.variant} has no Base-LoRA")
        return remove_background, grayscale, base

    def analyze(self, images: Sequence[ImageSource | InputImage], names: Sequence[str] | None,
                options: tuple[bool, bool, bool], timer: _Timer) -> tuple[list[_Photo], dict[str, str], int]:
        """Photos -> (their results in input order, skipped name -> reason, cache hits), with the face
        models only. ``names[i]`` names image i (default: the image's own name). ``HyperLoRAError``
        for more than ``MAX_PHOTOS`` photos, before any is read."""
        problem = photo_count_problem(len(images))
        if problem:
            raise HyperLoRAError(problem)
        t = time.perf_counter()
        if not self.faces.analyzer_loaded:
            self.faces.analyzer()
            t = timer.lap("face models", t)
        analyzer = self.faces.analyzer()
        photos, skipped, hits = [], {}, 0
        for i, img in enumerate(images):
            label = names[i] if names and i < len(names) else None
            try:
                inp = img if isinstance(img, InputImage) else load_image(img, label)
            except ImageError as exc:
                skipped[label or f"image {i + 1}"] = str(exc)
                t = timer.lap("decode", t)
                continue
            name = label or inp.name
            t = timer.lap("decode", t)
            key = (inp.digest, *options, self.faces.version)
            with self._lock:
                cached = self._cache.get(key)
                if cached is not None:
                    self._cache.move_to_end(key)
            if cached is not None:
                photos.append(_Photo(replace(cached.face, name=name), cached))
                hits += 1
                continue
            try:
                face = analyzer.analyze(inp, *options)
            except ImageError as exc:  # this photo only; the others still count
                skipped[name] = str(exc)
                t = timer.lap("faces", t)
                continue
            t = timer.lap("faces", t)
            if face is None:
                skipped[name] = "no face found"
                continue
            entry = _Entry(replace(face, name=name))
            self._remember(key, entry)
            photos.append(_Photo(entry.face, entry))
        return photos, skipped, hits

    def _remember(self, key: tuple, entry: _Entry) -> None:
        with self._lock:
            self._cache[key] = entry
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)

    def _tokens(self, photos: list[_Photo], base: bool, timer: _Timer) -> None:
        """CLIP and the hypernetwork for the photos without tokens, one photo at a time."""
        spec = self.hypernet.spec
        todo = list({id(p.entry): p.entry for p in photos if p.entry.tokens is None}.values())
        if not todo:
            return
        t = time.perf_counter()
        if not self.faces.clip_loaded and (spec.uses_clip or base):
            encoder = self.faces.clip_encoder()
            expected = spec.resampler.embedding_dim_2 or spec.resampler.embedding_dim
            if spec.uses_clip and encoder.hidden_size != expected:
                raise HyperLoRAError(f"CLIP in {self.faces.locations.clip_vit} has width {encoder.hidden_size}; "
                                     f"{spec.variant} expects {expected} (CLIP ViT-L/14)")
            t = timer.lap("clip load", t)
        with self.faces.use(), self.hypernet.on_device("networks"):
            for entry in todo:
                face = entry.face
                clip = self.faces.clip_features([face.clip_image]) if spec.uses_clip else None
                # the face has its base image whenever base is asked (it is in the analysis' options)
                base_clip = self.faces.clip_features([cast(Image.Image, face.base_image)]) if base else None
                t = timer.lap("clip", t)
                ids = torch.from_numpy(face.embedding[None])
                id_tokens = self.hypernet.image_tokens(clip, ids, "id")[0]
                base_tokens = self.hypernet.image_tokens(base_clip, None, "base")[0] if base else None
                entry.tokens = (id_tokens, base_tokens)
                t = timer.lap("hypernet", t)

    def _identity(self, photos: list[_Photo], skipped: dict[str, str], hits: int, options: tuple[bool, bool, bool],
                  name: str, timer: _Timer) -> Prediction:
        if not photos:
            detail = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no images given"
            raise NoFaceError(f"No usable face in the images ({detail}). Use clear, front-facing photos.", skipped)
        remove_background, grayscale, base = options
        self._tokens(photos, base, timer)
        t = time.perf_counter()
        pooled = sorted(photos, key=lambda p: p.face.digest)  # the order of the photos does not count
        tokens = [cast(_Tokens, p.entry.tokens) for p in pooled]  # every entry has them now (``_tokens``)
        id_tokens = pool_tokens(torch.stack([t[0] for t in tokens]))
        base_tokens = pool_tokens(torch.stack([cast(torch.Tensor, t[1]) for t in tokens])) if base else None
        embedding = np.mean([p.face.embedding for p in pooled], axis=0, dtype=np.float32)
        timer.lap("pool", t)
        faces = [p.face for p in photos]
        spec = self.hypernet.spec
        identity = Identity(
            tokens=id_tokens, base_tokens=base_tokens, variant=spec.variant, model_fingerprint=spec.fingerprint,
            name=name, source_names=tuple(f.name for f in faces), source_digests=tuple(f.digest for f in faces),
            options={"remove_background": remove_background, "grayscale": grayscale, "base": base},
            crops=[f.clip_image for f in faces], embedding=torch.from_numpy(embedding))
        return Prediction(identity, faces, skipped, timer.times, hits)

    @with_own_numerics
    def predict(self, images: Sequence[ImageSource | InputImage], remove_background: bool = True,
                grayscale: bool = False, base: bool | None = None, name: str = "",
                names: Sequence[str] | None = None) -> Prediction:
        """Photos of one person -> Prediction (Identity averaged over every image with a face).

        Images without a face, or unreadable, are skipped and reported by name; if none is
        usable, ``NoFaceError`` lists each reason. ``base`` (default: when the checkpoint has a
        Base-LoRA) also predicts Base tokens. Repeated images come from the cache.
        """
        options = self._options(remove_background, grayscale, base)
        timer = _Timer(self.hypernet.precision.device)
        photos, skipped, hits = self.analyze(images, names, options, timer)
        return self._identity(photos, skipped, hits, options, name, timer)

    @with_own_numerics
    def predict_checked(self, images: Sequence[ImageSource | InputImage], names: Sequence[str] | None = None,
                        drop_flagged: bool = False, threshold: float = FLAG_BELOW, remove_background: bool = True,
                        grayscale: bool = False, base: bool | None = None, name: str = ""
                        ) -> tuple[Prediction, PhotoCheck]:
        """``predict`` plus the photo-set check of the faces found; with ``drop_flagged`` the photos
        it flags are left out before CLIP and the hypernetwork run. ``HyperLoRAError`` when
        ``drop_flagged`` would leave no photo."""
        options = self._options(remove_background, grayscale, base)
        timer = _Timer(self.hypernet.precision.device)
        photos, skipped, hits = self.analyze(images, names, options, timer)
        check = (check_embeddings([p.face.name for p in photos], np.stack([p.face.embedding for p in photos]),
                                  threshold) if photos else PhotoCheck((), threshold))
        if drop_flagged and check.flagged:
            kept = [p for p, score in zip(photos, check.photos) if not score.flagged]
            if not kept:
                raise HyperLoRAError(f"every photo was flagged ({', '.join(check.flagged)}): they do not look like "
                                     "one person, so none can be dropped; choose the photos yourself")
            skipped.update({n: f"left out: similarity to the other photos below {threshold}" for n in check.flagged})
            photos = kept
        return self._identity(photos, skipped, hits, options, name, timer), check


def predict_checked(model: HyperLoRAModel, images: Sequence[ImageSource | InputImage],
                    names: Sequence[str] | None = None, drop_flagged: bool = False,
                    threshold: float = FLAG_BELOW, **predict_options: Any) -> tuple[Prediction, PhotoCheck]:
    """``model.predict`` plus the photo check (``PhotoPipeline.predict_checked``); ``predict_options``:
    the rest of ``predict``'s (``remove_background``, ``grayscale``, ``base``, ``name``)."""
    return model.pipeline.predict_checked(images, names, drop_flagged, threshold, **predict_options)
