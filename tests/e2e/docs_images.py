"""The README's screenshots (docs/images/*.png), written by test_browser.py when $HYPERLORA_E2E_DOCS_IMAGES names a
folder (see tests/e2e/README.md).

The face is the astronaut portrait shipped with scikit-image (``skimage.data.astronaut()``: NASA, "no known
copyright restrictions, released into the public domain"; both WebUIs' venvs have scikit-image). The suite's face
detector is synthetic (tests/face_pack.py: a "face" is a skin-coloured blob on a contrasting background), so each
photo is her head, cut out in an ellipse and put on a plain blue background, where that detector finds the face.
Nothing is downloaded and no image is stored in the repository: the photos are made at run time.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFilter

LIMIT = 400_000  # bytes per PNG
HEAD = (150, 15, 305, 195)  # her head in the 512 x 512 portrait
# (background, scale, mirrored): three photos of one person that differ a little, as a user's would
PHOTOS = [((40, 60, 190), 1.0, False), ((40, 90, 150), 1.15, True), ((50, 50, 170), 0.9, False)]


def folder() -> Path | None:
    value = os.environ.get("HYPERLORA_E2E_DOCS_IMAGES")
    if not value:
        return None
    out = Path(value)
    out.mkdir(parents=True, exist_ok=True)
    return out


def astronaut_photos(out: Path) -> list[Path]:
    """Three 320 x 380 photos of the astronaut's face on plain backgrounds, written to ``out``."""
    data = pytest.importorskip("skimage.data", reason="the docs photos come from scikit-image's astronaut()")
    portrait = Image.fromarray(data.astronaut())
    paths = []
    for i, (background, scale, mirrored) in enumerate(PHOTOS):
        head = portrait.crop(HEAD)
        if mirrored:
            head = head.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        head = head.resize((round(head.width * scale), round(head.height * scale)), Image.Resampling.LANCZOS)
        mask = Image.new("L", head.size, 0)
        ImageDraw.Draw(mask).ellipse((0, 0, head.width - 1, head.height - 1), fill=255)
        photo = Image.new("RGB", (320, 380), background)
        photo.paste(head, ((320 - head.width) // 2, (380 - head.height) // 2), mask.filter(ImageFilter.GaussianBlur(3)))
        paths.append(out / f"astronaut_{i + 1}.png")
        photo.save(paths[-1])
    return paths


def link_checkpoint(source: Path, name: Path) -> None:
    """The checkpoint folder ``source`` under another folder name (its files hard-linked, else copied): the Model
    list and the identities then show that name (a symlinked folder would resolve to ``source``'s name)."""
    name.mkdir(exist_ok=True)
    for f in source.iterdir():
        if f.is_file() and not (name / f.name).exists():
            try:
                os.link(f, name / f.name)
            except OSError:
                shutil.copy2(f, name / f.name)


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def save_png(png: bytes, path: Path, limit: int = LIMIT) -> int:
    """Write a screenshot as an optimised PNG, quantised (256, else 128 colours) when that is needed to stay
    under ``limit`` bytes; returns the size."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    data = _png(image)
    for colours in (256, 128):
        if len(data) <= limit:
            break
        data = _png(image.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG))
    assert len(data) <= limit, f"{path.name}: {len(data)} bytes even at 128 colours"
    path.write_bytes(data)
    return len(data)


def clip_around(page, selectors: list[str], margin: int = 8) -> dict:
    """The page rectangle around the first element of each selector (for ``page.screenshot(clip=...)``)."""
    boxes = [page.locator(s).first.bounding_box() for s in selectors]
    left, top = min(b["x"] for b in boxes) - margin, min(b["y"] for b in boxes) - margin
    right = max(b["x"] + b["width"] for b in boxes) + margin
    bottom = max(b["y"] + b["height"] for b in boxes) + margin
    return {"x": max(0, left), "y": max(0, top), "width": right - max(0, left), "height": bottom - max(0, top)}


def clip_to_backdrop(page, selector: str) -> dict:
    """The page rectangle of the nearest element at or above ``selector`` that paints a background (e.g. the white
    box of a popup), less its rounded corners, so that nothing behind the popup shows."""
    return page.locator(selector).first.evaluate("""e => {
        for (; e && e !== document.body; e = e.parentElement) {
            const style = getComputedStyle(e);
            if (style.backgroundColor !== 'rgba(0, 0, 0, 0)' && style.backgroundColor !== 'transparent') {
                const r = e.getBoundingClientRect(), inset = Math.ceil(parseFloat(style.borderTopLeftRadius) || 0);
                return {x: r.x + inset, y: r.y + inset, width: r.width - 2 * inset, height: r.height - 2 * inset};
            }
        }
        return null;
    }""")
