"""Photo-set check: do the photos of an identity show one person?

Each photo's score is the cosine similarity between its L2-normalised ArcFace embedding and
the re-normalised mean of the *other* photos' embeddings (leave-one-out centroid). With three or
more photos an odd one out scores low while the others, dominated by the majority, stay high;
with two photos both get the same score (their cosine), so both are flagged together — the
check cannot tell which one is the other person.

Threshold ``FLAG_BELOW = 0.3``: ArcFace models of the glint/ms1m family put the same person at
roughly 0.5-0.8 between single photos (higher against a centroid) and different people near 0
(|cos| < 0.2); verification thresholds in insightface-based tools sit at 0.28-0.4. 0.3 flags a
different person with few false alarms, and a bad photo of the right person (profile, blur,
heavy occlusion) that is worth replacing anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

FLAG_BELOW = 0.3


@dataclass(frozen=True)
class PhotoScore:
    """One photo: its name, cosine to the other photos' centroid in [-1, 1], whether flagged."""

    name: str
    similarity: float
    flagged: bool


@dataclass(frozen=True)
class PhotoCheck:
    """Scores of a photo set (empty for fewer than two photos) and the threshold used."""

    photos: tuple[PhotoScore, ...]
    threshold: float = FLAG_BELOW

    @property
    def flagged(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.photos if p.flagged)

    def to_dict(self) -> dict:
        """JSON-ready: ``{"threshold": t, "photos": [{"name", "similarity", "flagged"}, ...]}``."""
        return {"threshold": self.threshold,
                "photos": [{"name": p.name, "similarity": round(p.similarity, 4), "flagged": p.flagged}
                           for p in self.photos]}


def check_embeddings(names: Sequence[str], embeddings: np.ndarray, threshold: float = FLAG_BELOW) -> PhotoCheck:
    """``embeddings``: (N, 512) L2-normalised ArcFace embeddings of the photos ``names``."""
    e = np.asarray(embeddings, dtype=np.float64).reshape(len(names), -1)
    if len(names) < 2:
        return PhotoCheck((), threshold)
    others = e.sum(axis=0, keepdims=True) - e  # (N, 512): sum of the other photos
    others /= np.maximum(np.linalg.norm(others, axis=1, keepdims=True), 1e-12)
    sims = np.einsum("nd,nd->n", e, others)
    return PhotoCheck(tuple(PhotoScore(n, float(s), bool(s < threshold)) for n, s in zip(names, sims)), threshold)

