"""Likeness: how close the faces in an image are to stored identities (the paper's "ID Sim.").

Similarity of an identity and a face = the cosine between the identity's reference ArcFace
embedding (``Identity.unit_embedding()``: the re-normalised mean of its photos' embeddings) and the
L2-normalised ArcFace embedding of the face; in [-1, 1], higher is closer. The paper measures ID
Sim. with CurricularFace, a network not used in training; here the same antelopev2 ArcFace
(glintr100) that feeds HyperLoRA is used, so scores read higher than the paper's and compare images
with each other, not with published numbers.

Several faces, several identities (a picture of two people): each identity is matched to its own
face, one to one, by the assignment with the largest total similarity (``assignment``; not each
identity's best face, which could give two identities the same face). Its score is the similarity
to that face. More faces than identities: the extra faces stay unmatched. More identities than
faces: the identities left without a face score ``no face``. Faces are numbered from 1, left to
right by the x-centre of their box. Detections whose boxes overlap by at least half of the smaller
box are one face (a detector can report one face at two scales, which would otherwise let two
identities share it); such a face's box is that of its highest-scoring detection and its similarity
the best over its detections.

Infotext form (``format_likeness``): ``alice 0.71 (face 1), bob 0.66 (face 2)`` — parts joined by
", ", each ``NAME SCORE (face N)`` (two decimals) or ``NAME no face``. Earlier versions wrote
``NAME SCORE`` without the face number; ``parse_likeness`` reads both. Names pass through
``safe_name`` (letters, digits, ``-_.`` and spaces: no commas, colons or brackets), so the text
parses back unambiguously (a host that quotes values with commas, as A1111's infotext does, keeps
it one value).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence, cast

import numpy as np

from ..files import safe_name
from ..identities.identity import Identity
from .assignment import best_assignment
from .images import ImageSource, InputImage, load_image

if TYPE_CHECKING:
    from .faces import FaceAnalyzer

NO_FACE = "no face"
NO_REFERENCE = "no reference embedding (a slider, or an identity made before likeness scores): not scored"
SAME_FACE_OVERLAP = 0.5  # intersection / smaller box area from which two detections are one face

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class LikenessScore:
    """One identity's likeness in one image: ``similarity`` to the face it was matched to, None
    when it got no face; ``face`` that face's number (1 = leftmost) and ``box`` its (x1, y1, x2,
    y2) in pixels, None with no face or when read back from text without face numbers."""

    name: str
    similarity: float | None
    face: int | None = None
    box: Box | None = None

    @property
    def label(self) -> str:
        if self.similarity is None:
            return NO_FACE
        return f"{self.similarity:.2f}" + ("" if self.face is None else f" (face {self.face})")

    def to_dict(self) -> dict:
        """``{"name", "score", "face", "box"}`` (JSON: the CLI's ``--json`` and the HTTP API)."""
        return {"name": self.name, "score": self.similarity, "face": self.face,
                "box": None if self.box is None else [round(float(v), 1) for v in self.box]}


@dataclass(frozen=True)
class Face:
    """One face in an image: its ``box`` and the unit ArcFace ``embeddings`` (k, 512) of its k detections."""

    box: Box
    embeddings: np.ndarray

    def similarity(self, reference: np.ndarray) -> float:
        return float(np.max(self.embeddings.astype(np.float64) @ reference))


def _overlaps(a: np.ndarray, b: np.ndarray, share: float) -> bool:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w > 0 and h > 0 and w * h >= share * smaller


def group_faces(boxes: np.ndarray, embeddings: np.ndarray, share: float = SAME_FACE_OVERLAP) -> list[Face]:
    """Detections (boxes (N, 4) in the detector's order, best first; embeddings (N, 512)) -> faces,
    left to right by box x-centre. Detections overlapping by ``share`` of the smaller box, directly
    or through others, are one face."""
    n = len(boxes)
    root = list(range(n))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if _overlaps(boxes[i], boxes[j], share):
                a, b = find(i), find(j)
                root[max(a, b)] = min(a, b)  # the root stays the best-scoring detection
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    faces = [Face(cast(Box, tuple(float(v) for v in boxes[r])), embeddings[members]) for r, members in groups.items()]
    return sorted(faces, key=lambda f: ((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2))


def _named(identities: Mapping[str, Identity] | Sequence[Identity]) -> list[tuple[str, Identity]]:
    items = identities.items() if isinstance(identities, Mapping) else ((i.name, i) for i in identities)
    return [(safe_name(name) if name.strip() else identity.hash, identity) for name, identity in items]


def match_faces(faces: Sequence[Face], references: Sequence[tuple[str, np.ndarray]]) -> list[LikenessScore]:
    """Identities (name, unit reference embedding) -> their faces, one to one, largest total similarity."""
    sims = [[face.similarity(ref) for face in faces] for _, ref in references]
    chosen = best_assignment(sims) if faces else [None] * len(references)
    return [LikenessScore(name, None) if f is None else LikenessScore(name, sims[i][f], f + 1, faces[f].box)
            for i, ((name, _), f) in enumerate(zip(references, chosen))]


def likeness(analyzer: FaceAnalyzer, image: ImageSource | InputImage,
             identities: Mapping[str, Identity] | Sequence[Identity]) -> list[LikenessScore]:
    """Scores of ``identities`` (a name -> identity map, or identities named by ``.name``) in
    ``image`` (path, bytes, PIL or (H, W, 3) RGB array), in the given order, each for its own face
    (see the module docstring). Identities without a reference embedding (files from older
    versions, sliders) are left out."""
    pixels = (image if isinstance(image, InputImage) else load_image(image, "image")).pixels
    boxes, embeddings = analyzer.all_embeddings(pixels)  # (N, 4), (N, 512) unit length
    references = [(name, ref.double().numpy()) for name, identity in _named(identities)
                  if (ref := identity.unit_embedding()) is not None]
    return match_faces(group_faces(boxes, embeddings), references)


def unscored(identities: Mapping[str, Identity]) -> dict[str, str]:
    """The names of ``identities`` that ``likeness`` leaves out (no reference embedding) -> why."""
    return {name: NO_REFERENCE for name, identity in identities.items() if identity.unit_embedding() is None}


def likeness_json(scores: Sequence[LikenessScore], skipped: Mapping[str, str] | None = None) -> dict:
    """What the CLI's ``likeness --json`` prints and ``POST /hyperlora/v1/likeness`` returns:
    ``{"text": <format_likeness>, "scores": [{"name", "score", "face", "box"}, ...], "skipped": {name: why}}``
    (``score``, ``face`` and ``box`` null for an identity without a face; ``box`` [x1, y1, x2, y2] in pixels)."""
    return {"text": format_likeness(scores), "scores": [s.to_dict() for s in scores], "skipped": dict(skipped or {})}


def format_likeness(scores: Sequence[LikenessScore]) -> str:
    """``alice 0.71 (face 1), bob no face`` (empty string for no scores)."""
    return ", ".join(f"{s.name} {s.label}" for s in scores)


_PART = re.compile(r"^(?P<name>[^:()]+?) (?:(?P<score>-?\d+(?:\.\d+)?)(?: \(face (?P<face>\d+)\))?|no face)$")


def parse_likeness_scores(text: str) -> list[LikenessScore]:
    """Inverse of ``format_likeness``, with face numbers (None in the older form without them; boxes
    are not in the text). Raises ``ValueError`` for text not in that form."""
    out = []
    for part in filter(None, (p.strip() for p in text.strip().strip('"').split(","))):
        m = _PART.match(part)
        if m is None:
            raise ValueError(f"{part!r} is not 'NAME SCORE (face N)', 'NAME SCORE' or 'NAME no face'")
        score = None if m["score"] is None else float(m["score"])
        out.append(LikenessScore(m["name"], score, None if m["face"] is None else int(m["face"])))
    return out


def parse_likeness(text: str) -> dict[str, float | None]:
    """``format_likeness`` text (this version's or the older one without face numbers) -> name ->
    score (None for "no face"). Raises ``ValueError`` for text not in that form."""
    return {s.name: s.similarity for s in parse_likeness_scores(text)}
