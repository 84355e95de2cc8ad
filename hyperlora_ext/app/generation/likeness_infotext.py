"""``HyperLoRA likeness: alice 0.71 (face 1), bob 0.66 (face 2)`` in each generated image's infotext.

Each applied identity is scored on its own face of the final image, one face per identity, the
assignment with the largest total similarity; faces are numbered from 1, left to right; an identity
left without a face reads ``no face`` (``photos.likeness``, whose ``parse_likeness`` also reads the
older ``alice 0.64`` form written before face numbers).

The ExtraNetwork records which identities a generation applied on ``p`` (``remember``, first
pass and hires pass); after each image is final the Script calls ``annotate`` from
``postprocess_image_after_composite``. Both hosts call that hook per image after every
``postprocess_image`` (ADetailer's included), after the inpaint overlay, and right before
``infotext(i)`` of that image is built from ``p.extra_generation_params`` (processing.py), so
setting the key there gives a per-image value: each image overwrites the previous one's.
Host-independent: works on the host's ``p`` (``processing.Processing``). Never raises (problems become warnings).
"""

from __future__ import annotations

import logging
from typing import Sequence

from ...identities.identity import Identity
from ...photos.images import ImageSource
from ...photos.likeness import format_likeness
from ..core.service import HyperLoRAService
from ..core.tags import Applied
from . import inner_passes
from .comments import comment
from .processing import Processing

log = logging.getLogger(__name__)
LIKENESS_KEY = "HyperLoRA likeness"
_APPLIED_ATTR = "hyperlora_applied"


def start_pass(p: Processing) -> None:
    """A first pass (not hires) starts a new batch: forget the previous batch's identities."""
    if not getattr(p, "is_hr_pass", False):
        setattr(p, _APPLIED_ATTR, {})


def remember(p: Processing, applied: Sequence[Applied]) -> None:
    """Record ``applied`` identities on ``p`` (name -> hash, first appearance first)."""
    known = getattr(p, _APPLIED_ATTR, None)
    if not isinstance(known, dict):
        known = {}
        setattr(p, _APPLIED_ATTR, known)
    for a in applied:
        known.setdefault(a.name, a.identity_hash)


def _identities(service: HyperLoRAService, applied: dict[str, str]) -> list[Identity]:
    """The applied identities as stored now (by name, else by hash when renamed since)."""
    out = []
    for name, identity_hash in applied.items():
        try:
            identity = service.identities.get(name)
        except KeyError:
            identity = None
        if identity is None or identity.hash != identity_hash:
            found = service.identities.find_by_hash(identity_hash)
            identity = service.identities.get(found) if found else None
        if identity is not None:
            out.append(identity)
    return out


def likeness_text(service: HyperLoRAService, applied: dict[str, str], image: ImageSource) -> str:
    """``alice 0.71 (face 1), bob no face`` for ``image``; "" when no applied identity can be scored."""
    identities = [i for i in _identities(service, applied) if i.unit_embedding() is not None]
    return format_likeness(service.likeness(image, identities)) if identities else ""


def annotate(service: HyperLoRAService, p: Processing, image: ImageSource) -> None:
    """Set (or clear) ``HyperLoRA likeness`` in ``p.extra_generation_params`` for the final ``image``,
    with the identities of the generation and of the inner passes that made this image (whose
    ``HyperLoRA inner passes`` entry is set here too)."""
    params = getattr(p, "extra_generation_params", None)
    if not isinstance(params, dict):
        return
    params.pop(LIKENESS_KEY, None)
    inner = inner_passes.take(p)
    inner_passes.write_infotext(params, inner)
    applied = dict(getattr(p, _APPLIED_ATTR, None) or {})
    for a in inner:
        applied.setdefault(a.name, a.identity_hash)
    try:
        if not applied or not service.config.likeness_infotext:
            return
        text = likeness_text(service, applied, image)
    except Exception as exc:  # a generation must never fail because of the likeness score
        log.exception("HyperLoRA likeness failed")
        comment(p, f"HyperLoRA: likeness not measured ({type(exc).__name__}: {exc})")
        return
    if text:
        params[LIKENESS_KEY] = text
