"""Likeness: how close the faces in an image are to stored identities (the paper's "ID Sim.").

Score of one identity = the best cosine similarity between its reference ArcFace embedding
(``Identity.unit_embedding()``: the re-normalised mean of its photos' embeddings) and the
L2-normalised ArcFace embedding of every face detected in the image; in [-1, 1], higher is
closer. The paper measures ID Sim. with CurricularFace, a network not used in training; here
the same antelopev2 ArcFace (glintr100) that feeds HyperLoRA is used, so scores read higher
than the paper's and compare images with each other, not with published numbers.

Infotext form (``format_likeness``): ``alice 0.64, bob no face`` — parts joined by ", ",
each ``NAME SCORE`` (two decimals) or ``NAME no face``. Names pass through ``safe_name``, which
removes commas and colons, so ``parse_likeness`` reads it back unambiguously (a host that
quotes values with commas, as A1111's infotext does, keeps it one value).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ..files import safe_name
from ..identities.identity import Identity
from .images import ImageSource, InputImage, load_image

if TYPE_CHECKING:
    from .faces import FaceAnalyzer

NO_FACE = "no face"


@dataclass(frozen=True)
class LikenessScore:
    """One identity's likeness in one image: ``similarity`` is the best cosine over the
    detected faces, None when the image has no face; ``face`` indexes the best face
    (``boxes`` order of ``FaceAnalyzer.all_embeddings``), -1 when none."""

    name: str
    similarity: float | None
    face: int = -1

    @property
    def label(self) -> str:
        return NO_FACE if self.similarity is None else f"{self.similarity:.2f}"


def _named(identities: Mapping[str, Identity] | Sequence[Identity]) -> list[tuple[str, Identity]]:
    items = identities.items() if isinstance(identities, Mapping) else ((i.name, i) for i in identities)
    return [(safe_name(name) if name.strip() else identity.hash, identity) for name, identity in items]


def likeness(analyzer: FaceAnalyzer, image: ImageSource | InputImage,
             identities: Mapping[str, Identity] | Sequence[Identity]) -> list[LikenessScore]:
    """Scores of ``identities`` (a name -> identity map, or identities named by ``.name``) in
    ``image`` (path, bytes, PIL or (H, W, 3) RGB array), in the given order. Identities without
    a reference embedding (files from older versions, sliders) are left out."""
    pixels = (image if isinstance(image, InputImage) else load_image(image, "image")).pixels
    _, faces = analyzer.all_embeddings(pixels)  # (N, 512), unit length
    scores = []
    for name, identity in _named(identities):
        ref = identity.unit_embedding()
        if ref is None:
            continue
        if not len(faces):
            scores.append(LikenessScore(name, None))
            continue
        cos = faces.astype(np.float64) @ ref.double().numpy()
        best = int(np.argmax(cos))
        scores.append(LikenessScore(name, float(cos[best]), best))
    return scores


def format_likeness(scores: Sequence[LikenessScore]) -> str:
    """``alice 0.64, bob no face`` (empty string for no scores)."""
    return ", ".join(f"{s.name} {s.label}" for s in scores)


_PART = re.compile(r"^(?P<name>[^:]+?) (?:(?P<score>-?\d+(?:\.\d+)?)|no face)$")


def parse_likeness(text: str) -> dict[str, float | None]:
    """Inverse of ``format_likeness``: name -> score (None for "no face"). Raises
    ``ValueError`` for text not in that form."""
    out: dict[str, float | None] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = _PART.match(part)
        if m is None:
            raise ValueError(f"{part!r} is not 'NAME SCORE' or 'NAME no face'")
        out[m["name"]] = None if m["score"] is None else float(m["score"])
    return out
