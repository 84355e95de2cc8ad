"""What makes a saved LoRA file a complete card on the WebUIs' Lora page, beside its ``NAME.preview.png``.

* ``card_metadata``: keys for the file's safetensors header: the SAI model spec (``modelspec.description``,
  ``.trigger_phrase``, ``.usage_hint``, ``.thumbnail`` as a JPEG data URI) and our provenance.
* ``user_metadata``: the host's user-metadata sidecar ``NAME.json`` (A1111 1.10 and every Forge read and
  write the same keys in their Lora card editor): ``activation text`` (the trigger words, which a click on
  the card adds after the tag), ``preferred weight`` (the weight the click inserts), ``sd version`` and a
  ``description``.
* ``write_sidecar``: writes it atomically, keeping every value the user changed in the host's card editor
  since we last wrote it (we record what we wrote in the LoRA header, ``hyperlora.user_metadata``).
* ``save_identity_lora``: an identity's LoRA written as all three (the WebUI's Save as LoRA, the command line).
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path

import safetensors
import torch
from PIL import Image

from ..files import atomic_write
from ..lora import TRIGGER_PHRASE, lora_metadata, save_lora
from .identity import Identity

WRITTEN_KEY = "hyperlora.user_metadata"  # LoRA header: the sidecar values we wrote last (JSON)
THUMBNAIL_SIZE = 192  # px, the header's JPEG thumbnail


@dataclass(frozen=True)
class CardFacts:
    """The facts of one saved identity LoRA. ``created``: when the identity was made (ISO 8601);
    ``checkpoint``: the fingerprint of the HyperLoRA checkpoint that made it; ``weight``: the weight a
    click on the card inserts (the configured default weight)."""

    identity: str
    identity_hash: str
    variant: str
    checkpoint: str
    created: str
    weight: float
    base_weight: float = 0.0

    @classmethod
    def of(cls, identity: Identity, weight: float, base_weight: float = 0.0) -> CardFacts:
        return cls(identity.name, identity.hash, identity.variant, identity.model_fingerprint, identity.created,
                   float(weight), float(base_weight))

    @property
    def description(self) -> str:
        base = f", Base-LoRA baked in at {self.base_weight:g}" if self.base_weight else ""
        return (f"HyperLoRA identity {self.identity} ({self.identity_hash}{base}): variant {self.variant}, "
                f"checkpoint {self.checkpoint or 'unknown'}, made {self.created[:10] or 'at an unknown date'}. "
                f"Start the prompt with {TRIGGER_PHRASE}; weight 0.75-0.85 works best.")


def thumbnail_uri(preview: Image.Image | None) -> str | None:
    """``preview`` as a small JPEG data URI (the SAI model spec's ``modelspec.thumbnail``), or None."""
    if preview is None:
        return None
    image = preview.convert("RGB")
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def user_metadata(facts: CardFacts) -> dict[str, object]:
    """The sidecar's values, in the host's own keys."""
    return {"description": facts.description, "sd version": "SDXL", "activation text": TRIGGER_PHRASE,
            "preferred weight": facts.weight, "negative text": "", "notes": ""}


def card_metadata(facts: CardFacts, preview: Image.Image | None) -> dict[str, str]:
    """Header keys: the model spec's description, trigger phrase, usage hint and thumbnail, our provenance,
    and the sidecar values written with this file (``WRITTEN_KEY``)."""
    meta = {"modelspec.description": facts.description, "modelspec.trigger_phrase": TRIGGER_PHRASE,
            "modelspec.usage_hint": f"<lora:NAME:{facts.weight:g}> with the trigger words {TRIGGER_PHRASE}",
            "hyperlora.identity": facts.identity, "hyperlora.identity_hash": facts.identity_hash,
            "hyperlora.variant": facts.variant, "hyperlora.model_fingerprint": facts.checkpoint,
            "hyperlora.created": facts.created, "hyperlora.base_weight": f"{facts.base_weight:g}",
            WRITTEN_KEY: json.dumps(user_metadata(facts))}
    thumbnail = thumbnail_uri(preview)
    if thumbnail:
        meta["modelspec.thumbnail"] = thumbnail
    return meta


def sidecar_path(lora_path: str | Path) -> Path:
    path = Path(lora_path)
    return path.with_name(path.stem + ".json")


def read_sidecar(lora_path: str | Path) -> dict[str, object]:
    """The sidecar's values, or {} when there is none or it is not a JSON object."""
    try:
        data = json.loads(sidecar_path(lora_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_sidecar(lora_path: str | Path, facts: CardFacts, previously_written: dict[str, object] | None = None
                  ) -> dict[str, object]:
    """Write ``NAME.json`` beside the LoRA file atomically and return its values: ours, except where the
    existing sidecar differs from what we wrote last (``previously_written``: the user edited it in the card
    editor) or has keys of its own; with no record of what we wrote, an existing sidecar's values are kept."""
    ours = user_metadata(facts)
    existing = read_sidecar(lora_path)
    if previously_written is None:
        kept = existing
    else:
        kept = {k: v for k, v in existing.items() if k not in previously_written or previously_written[k] != v}
    values = {**ours, **kept}
    atomic_write(sidecar_path(lora_path), (json.dumps(values, indent=4, ensure_ascii=False) + "\n").encode())
    return values


def written_before(lora_path: str | Path) -> dict[str, object] | None:
    """The sidecar values recorded in an existing LoRA file's header, or None (no file, or not ours)."""
    try:
        with safetensors.safe_open(str(lora_path), "pt") as f:
            recorded = (f.metadata() or {}).get(WRITTEN_KEY)
        value = json.loads(recorded) if recorded else None
    except Exception:  # no file, not safetensors, damaged: nothing recorded
        return None
    return value if isinstance(value, dict) else None


def save_identity_lora(state_dict: dict[str, torch.Tensor], path: str | Path, identity: Identity, weight: float,
                       base_weight: float = 0.0, extra: dict[str, str] | None = None, overwrite: bool = False) -> Path:
    """``state_dict`` (the identity's LoRA) written as a complete Lora card: the ``.safetensors`` file (kohya and
    model-spec metadata, ``hyperlora.*`` provenance plus ``extra``), ``NAME.preview.png`` and ``NAME.json``.
    ``weight``: the weight a click on the card inserts. ``FileExistsError`` if the file exists and not
    ``overwrite`` (nothing written)."""
    path = Path(path)
    facts = CardFacts.of(identity, weight, base_weight)
    preview = identity.preview()
    previous = written_before(path) if overwrite else None
    meta = lora_metadata(path.stem, state_dict, extra)
    meta.update(card_metadata(facts, preview))
    save_lora(state_dict, path, meta, preview, overwrite=overwrite)
    write_sidecar(path, facts, previous)
    return path
