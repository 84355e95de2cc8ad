"""Synthetic photos of a few "people" shared by the tests (``face_pack``'s detector finds them)."""

from __future__ import annotations

import base64
import io

from face_pack import face_image
from PIL import Image

ALICE = [face_image(feature=(170, 110, 90), seed=s) for s in (1, 2)]  # two photos of one person
BOB = face_image(feature=(250, 215, 190), seed=4)  # one photo of another
NO_FACE = Image.new("RGB", (200, 200), (20, 40, 160))
# Clearly different people (ArcFace cosine < 0 between them), for likeness and the photo check.
ALICE_PATTERNED = [face_image(pattern=80, seed=s) for s in (1, 2, 3)]
BOB_PATTERNED = [face_image(pattern=-80, seed=s) for s in (4, 5)]


def group_photo(size: tuple[int, int], faces: list[tuple[int, int, int, int]]) -> Image.Image:
    """Several people in one picture: ``faces`` = (cx, cy, side, pattern) each, drawn as ``face_image``
    draws one face with that ``pattern`` (80: the patterned Alice, -80: the patterned Bob). Keep
    the faces well apart (gaps of a face's side): the synthetic detector also fires between faces
    that are close, so each face is then found once (as a few overlapping detections)."""
    out = face_image(size, faces=[])
    for cx, cy, side, pattern in faces:
        one = face_image(size, faces=[(cx, cy, side)], pattern=pattern)
        h = side // 2 + 2
        region = (cx - h, cy - h, cx + h, cy + h)
        out.paste(one.crop(region), region[:2])
    return out


def png_base64(image: Image.Image) -> str:
    """``image`` as the HTTP API takes photos: a base64 PNG."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()
