"""The official HyperLoRA face crops, from the 106 landmarks: the CLIP crop (background removed
onto flat grey), the Base-LoRA crop (face blurred), and bounded crops of any image size.

Pure image geometry (numpy + PIL): no models here. Coordinates are source pixels (x, y).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CROP_SIDE = 1024  # face crops (CLIP, ArcFace, Base) are downscaled to at most this many px a side
GREY = (127, 127, 127)
# Face outline (jaw 0-32) then brow / forehead points, in polygon order (official plugin).
OUTLINE = [1, 9, 10, 11, 12, 13, 14, 15, 16, 2, 3, 4, 5, 6, 7, 8, 0,
           24, 23, 22, 21, 20, 19, 18, 32, 31, 30, 29, 28, 27, 26, 25, 17,
           101, 105, 104, 103, 102, 50, 51, 49, 48, 43]


def face_box(landmarks: np.ndarray) -> tuple[tuple[float, float], float]:
    """Centre and half-side of the CLIP crop: 1.5 x the landmark extent, raised by 1/8."""
    x_min, y_min = landmarks.min(axis=0)
    x_max, y_max = landmarks.max(axis=0)
    half = max(x_max - x_min, y_max - y_min) * 0.75
    return ((x_min + x_max) * 0.5, (y_min + y_max) * 0.5 - half * 0.125), half


def crop_scaled(image: Image.Image, box: tuple[float, float, float, float], max_side: int,
                fill: int | tuple[int, ...] = 0) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """``image.crop(box)`` downscaled so no side exceeds ``max_side``, reading only the pixels
    inside the box; parts of the box past the image edge are padded with ``fill``.

    Returns (crop, origin, scale): a source point ``p`` lands at ``(p - origin) * scale``.
    """
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    w, h = max(1, x1 - x0), max(1, y1 - y0)
    shrink = min(1.0, max_side / max(w, h))
    out_w, out_h = max(1, round(w * shrink)), max(1, round(h * shrink))
    sx, sy = out_w / w, out_h / h
    out = Image.new(image.mode, (out_w, out_h), fill)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + w, image.width), min(y0 + h, image.height)
    if ix0 < ix1 and iy0 < iy1:
        dx0, dy0 = round((ix0 - x0) * sx), round((iy0 - y0) * sy)
        dx1, dy1 = round((ix1 - x0) * sx), round((iy1 - y0) * sy)
        if (dx1 - dx0, dy1 - dy0) == (ix1 - ix0, iy1 - iy0):
            part = image.crop((ix0, iy0, ix1, iy1))
        elif dx1 > dx0 and dy1 > dy0:
            part = image.resize((dx1 - dx0, dy1 - dy0), Image.Resampling.BICUBIC, box=(ix0, iy0, ix1, iy1),
                                reducing_gap=2.0)
        else:
            part = None
        if part is not None:
            out.paste(part, (dx0, dy0))
    return out, np.array([x0, y0], dtype=np.float32), np.array([sx, sy], dtype=np.float32)


def _outline_mask(landmarks: np.ndarray, mask_scale: float, origin: np.ndarray, scale: np.ndarray
                  ) -> tuple[Image.Image, tuple[int, int], tuple[float, float, float, float]]:
    """The soft face-outline mask of the official plugin (polygon blurred at 512 px) in a crop's
    frame: (mask, paste position, outline box in source pixels)."""
    pts = landmarks[OUTLINE]
    center = pts.mean(axis=0)
    half = max(float((pts.max(axis=0) - pts.min(axis=0)).max()) * 0.8, 0.5)
    box = (center[0] - half, center[1] - half, center[0] + half, center[1] + half)
    poly = ((pts - center) * mask_scale + half) * (512.0 / (2 * half))
    mask = Image.new("L", (512, 512), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in poly], fill=255)
    size = tuple(max(1, round(2 * half * s)) for s in scale)
    mask = mask.filter(ImageFilter.GaussianBlur(radius=15)).resize(size)
    px, py = (np.array(box[:2]) - origin) * scale
    pos = (int(round(px)), int(round(py)))
    return mask, pos, box


def face_crop(image: Image.Image, landmarks: np.ndarray, remove_bg: bool = True,
              max_side: int = CROP_SIDE) -> Image.Image:
    """The CLIP crop (``face_box``), at most ``max_side`` px a side; with ``remove_bg`` only the
    face inside its landmark outline (soft edge) is kept, on a flat grey canvas."""
    (cx, cy), half = face_box(landmarks)
    crop, origin, scale = crop_scaled(image, (cx - half, cy - half, cx + half, cy + half), max_side)
    if not remove_bg:
        return crop
    outline, pos, _ = _outline_mask(landmarks, 1.0, origin, scale)
    mask = Image.new("L", crop.size, 0)
    mask.paste(outline, pos)
    return Image.composite(crop, Image.new("RGB", crop.size, GREY), mask)


def base_crop(image: Image.Image, landmarks: np.ndarray, max_side: int = CROP_SIDE) -> Image.Image:
    """The Base-LoRA input: the face region strongly blurred, the rest (clothes, scene) kept."""
    (cx, cy), half = face_box(landmarks)
    box = (max(0, cx - half), max(0, cy - half), min(image.width, cx + half), min(image.height, cy + half))
    out, origin, scale = crop_scaled(image, box, max_side)
    mask, pos, outline_box = _outline_mask(landmarks, 1.4, origin, scale)
    blurred = crop_scaled(image, outline_box, 512)[0].resize((512, 512))
    blurred = blurred.filter(ImageFilter.GaussianBlur(radius=45)).resize(mask.size)
    out.paste(blurred, pos, mask)
    return out
