"""The HTTP API's JSON: request bodies (unknown fields refused), images in and out as base64, an
identity as JSON. Works with pydantic 1 (A1111) and 2 (Forge)."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Optional

from fastapi import HTTPException
from PIL import Image
from pydantic import BaseModel, Field

from ...identities.identity import Identity
from ..core.tags import format_tag


class _Strict(BaseModel):
    class Config:
        extra = "forbid"


class CreateRequest(_Strict):
    name: str = Field(..., description="identity name; becomes <hyperlora:NAME>")
    images: list[str] = Field(..., description="base64 images (plain or data: URI) of one person")
    variant: Optional[str] = Field(None, description="checkpoint folder; default: the first on disk")
    remove_background: bool = True
    grayscale: bool = False
    overwrite: bool = False
    drop_flagged: bool = Field(False, description="leave out photos that look like someone else")


class MixRequest(_Strict):
    name: str = Field(..., description="name of the new identity")
    expression: str = Field(..., description='"0.6*alice + 0.4*bob" (mix) or "smiling - neutral" (slider)')
    overwrite: bool = False


class LikenessRequest(_Strict):
    image: str = Field(..., description="base64 image (plain or data: URI), e.g. a generated picture")
    identities: list[str] = Field(..., description="identity names; each is scored on its own face")


class RenameRequest(_Strict):
    new_name: str


class SaveLoRARequest(_Strict):
    file_name: Optional[str] = Field(None, description="LoRA file stem; default: the identity name")
    base_weight: float = Field(0.0, ge=0.0, le=2.0)
    overwrite: bool = False


def decode_image(data: str, field: str) -> bytes:
    """base64 (optionally a ``data:image/...;base64,`` URI) -> bytes; 400 names the ``field``."""
    text = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, f"{field} is not valid base64") from None


def png_base64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def identity_json(identity: Identity, default_weight: float) -> dict:
    return {"name": identity.name, "hash": identity.hash, "variant": identity.variant,
            "has_base": identity.has_base, "sources": list(identity.source_names), "created": identity.created,
            "options": identity.options, "tag": format_tag(identity.name, default_weight)}
