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
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .errors import HyperLoRAError
from .images import ImageSource, InputImage, load_image

if TYPE_CHECKING:
    from .engine import HyperLoRAModel, Prediction
    from .faces import FaceResult

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


def check_faces(faces: Sequence[FaceResult], threshold: float = FLAG_BELOW) -> PhotoCheck:
    """The check on ``Prediction.faces`` (no further face analysis)."""
    return check_embeddings([f.name for f in faces], np.stack([f.embedding for f in faces]) if faces else
                            np.zeros((0, 512)), threshold)


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
