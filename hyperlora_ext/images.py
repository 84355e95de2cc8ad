"""Reading user images safely into 8-bit RGB: EXIF orientation, every common mode, size limits."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

MAX_PIXELS = 64_000_000  # refuse larger images (decompression bombs); ~8000 x 8000
MAX_FILE_BYTES = 100 * 1024 * 1024

ImageSource = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]


@dataclass
class InputImage:
    """A decoded input image: ``pixels`` is an RGB PIL image, ``digest`` hashes its pixels."""

    name: str
    pixels: Image.Image
    digest: str


def pixel_digest(image: Image.Image) -> str:
    """Content hash of an RGB image's pixels and size (independent of file format)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.width}x{image.height}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB. Transparency is composited over white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image).astype(np.float64)
        top = 65535.0 if image.mode.startswith("I") and arr.max(initial=0) > 255 else 255.0
        if image.mode == "F" and arr.max(initial=0) <= 1.0:
            top = 1.0
        image = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(canvas, rgba)
    return image.convert("RGB") if image.mode != "RGB" else image


def _from_array(arr: np.ndarray, name: str) -> Image.Image:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageError(f"{name}: an image array must be HxW, HxWx1, HxWx3 or HxWx4, got {arr.shape}")
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype.kind == "f":
        arr = np.clip(arr * (255.0 if arr.max(initial=0) <= 1.0 else 1.0) + 0.5, 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise ImageError(f"{name}: unsupported array dtype {arr.dtype} (use uint8, uint16 or float)")
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2]]
    return Image.fromarray(np.ascontiguousarray(arr if arr.shape[2] > 1 else arr[..., 0]), mode)


def load_image(source: ImageSource, name: str | None = None) -> InputImage:
    """Decode one image to RGB, honouring EXIF orientation.

    Accepts a path, encoded bytes, a PIL image or an (H, W[, C]) array (RGB channel order).
    Raises ``ImageError`` naming the image for non-images, damaged files and images over
    ``MAX_PIXELS`` (checked from the header, before decoding).
    """
    if isinstance(source, Image.Image):
        name = name or "image"
        image = source
    elif isinstance(source, np.ndarray):
        name = name or "array"
        image = _from_array(source, name)
    else:
        if isinstance(source, (bytes, bytearray)):
            name = name or "upload"
            if len(source) > MAX_FILE_BYTES:
                raise ImageError(f"{name}: file is larger than {MAX_FILE_BYTES >> 20} MB")
            stream: io.IOBase = io.BytesIO(source)
        else:
            path = Path(source)
            name = name or path.name
            if not path.is_file():
                raise ImageError(f"{name}: no such file ({path})")
            if path.stat().st_size > MAX_FILE_BYTES:
                raise ImageError(f"{name}: file is larger than {MAX_FILE_BYTES >> 20} MB")
            stream = io.BytesIO(path.read_bytes())
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(stream)
                image.size  # noqa: B018 - header parsed here
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            if isinstance(exc, UnidentifiedImageError):
                raise ImageError(f"{name}: not an image file Pillow can read (PNG, JPEG, WebP, ...)") from exc
            raise ImageError(f"{name}: image is too large (possible decompression bomb)") from exc
        except OSError as exc:
            raise ImageError(f"{name}: image data is damaged or truncated ({exc})") from exc
    if image.width * image.height > MAX_PIXELS:
        raise ImageError(f"{name}: {image.width}x{image.height} is larger than {MAX_PIXELS // 1_000_000} "
                         "megapixels; downscale it first")
    if image.width < 8 or image.height < 8:
        raise ImageError(f"{name}: {image.width}x{image.height} is too small to hold a face")
    try:
        image.load()
        image = ImageOps.exif_transpose(image) or image
        rgb = _to_rgb(image)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{name}: image data is damaged or truncated ({exc})") from exc
    return InputImage(name=name, pixels=rgb, digest=pixel_digest(rgb))

