"""Reading user images safely into 8-bit RGB: EXIF orientation, every common mode, size limits."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageError

MAX_PIXELS = 64_000_000  # refuse larger images (decompression bombs); ~8000 x 8000
MAX_FILE_BYTES = 100 * 1024 * 1024
MIN_SIDE = 8
ORIENTATION = 0x0112  # EXIF tag
# Photos of one identity (one Create): the panel, the HTTP API, the command line and ``predict`` share
# this limit. Photos are decoded and analysed one at a time, so the limit bounds the time a Create
# takes and the face crops it keeps (about 3-6 MB each), not the decoded pixels.
MAX_PHOTOS = 100

ImageSource = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]


@dataclass
class InputImage:
    """A decoded input image: ``pixels`` is an RGB PIL image, ``digest`` hashes its pixels."""

    name: str
    pixels: Image.Image
    digest: str


def photo_count_problem(count: int) -> str | None:
    """Why ``count`` photos cannot make one identity (the message the panel and the API show), or
    None when they can."""
    if count <= MAX_PHOTOS:
        return None
    return (f"Too many photos: {count} photos; at most {MAX_PHOTOS} per identity. Choose the best ones "
            "(a few clear, varied photos of the face are enough).")


STRIP_PIXELS = 1 << 22  # row strips of ~4 M pixels bound the temporary copies of big images


def _strips(image: Image.Image) -> Iterator[tuple[int, Image.Image]]:
    """(top row, strip) pieces of ``image``, each at most ~``STRIP_PIXELS``."""
    rows = max(1, STRIP_PIXELS // max(1, image.width))
    for top in range(0, image.height, rows):
        yield top, image.crop((0, top, image.width, min(image.height, top + rows)))


def pixel_digest(image: Image.Image) -> str:
    """Content hash of an RGB image's pixels and size (independent of file format)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.width}x{image.height}".encode())
    for _, strip in _strips(image):
        h.update(strip.tobytes())
    return h.hexdigest()


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit integer or float grey -> 8-bit L, scaled by the value range, strip by strip."""
    hi = 0.0  # two passes: getextrema() does not support every 16-bit mode
    for _, strip in _strips(image):
        arr = np.asarray(strip, dtype=np.float32)
        hi = max(hi, float(np.max(arr, initial=0.0, where=np.isfinite(arr))))
    if image.mode == "F":
        top = 1.0 if hi <= 1.0 else 255.0
    else:
        top = 65535.0 if hi > 255 else 255.0
    out = np.empty((image.height, image.width), np.uint8)
    for y, strip in _strips(image):
        arr = np.nan_to_num(np.asarray(strip, dtype=np.float32), nan=0.0, posinf=top, neginf=0.0)
        arr *= 255.0 / top
        arr += 0.5
        out[y:y + strip.height] = np.clip(arr, 0, 255)
    return Image.fromarray(out, "L")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB. Transparency is composited over white."""
    if image.mode.startswith("I") or image.mode == "F":
        image = _high_depth_to_l(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode == "La":  # premultiplied grey + alpha: Pillow converts it only to LA
        image = image.convert("LA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa"):
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
        arr = np.nan_to_num(arr, nan=0.0, posinf=255.0, neginf=0.0)
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
            stream = io.BytesIO(source)
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
    if image.width < MIN_SIDE or image.height < MIN_SIDE:
        raise ImageError(f"{name}: {image.width}x{image.height} is too small to hold a face; use a photo at "
                         f"least {MIN_SIDE} pixels on each side where the face is ~60 pixels or more wide")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{name}: image data is damaged or truncated ({exc})") from exc
    try:
        if image.getexif().get(ORIENTATION, 1) != 1:  # exif_transpose copies even upright images
            image = ImageOps.exif_transpose(image) or image
        rgb = _to_rgb(image)
    except (OSError, ValueError, SyntaxError, TypeError) as exc:
        raise ImageError(f"{name}: cannot convert this {image.mode} image to RGB ({exc}); save it as an "
                         "8-bit RGB PNG or JPEG and try again") from exc
    return InputImage(name=name, pixels=rgb, digest=pixel_digest(rgb))

