"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
from PIL import Image

VARIANT = "e2e_sdxl"


def decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


def encode(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def info_of(response_json: dict) -> dict:
    info = response_json.get("info", "{}")
    return json.loads(info) if isinstance(info, str) else info
