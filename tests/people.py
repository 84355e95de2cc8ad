"""Synthetic photos of a few "people" shared by the tests (``face_pack``'s detector finds them)."""

from __future__ import annotations

from face_pack import face_image
from PIL import Image

ALICE = [face_image(feature=(170, 110, 90), seed=s) for s in (1, 2)]  # two photos of one person
BOB = face_image(feature=(250, 215, 190), seed=4)  # one photo of another
NO_FACE = Image.new("RGB", (200, 200), (20, 40, 160))
# Clearly different people (ArcFace cosine < 0 between them), for likeness and the photo check.
ALICE_PATTERNED = [face_image(pattern=80, seed=s) for s in (1, 2, 3)]
BOB_PATTERNED = [face_image(pattern=-80, seed=s) for s in (4, 5)]
