"""Input images: modes, EXIF orientation, bombs, non-images."""

import io

import numpy as np
import pytest
from PIL import Image

from hyperlora_ext import ImageError, load_image


def encode(img, fmt="PNG", **kw):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "1", "CMYK", "I;16", "I", "F", "RGB"])
def test_every_mode_becomes_rgb(mode):
    base = Image.new("RGB", (40, 30), (200, 100, 50))
    img = base.convert(mode) if mode not in ("I;16", "I", "F") else Image.fromarray(
        {"I;16": np.full((30, 40), 50000, np.uint16), "I": np.full((30, 40), 50000, np.int32),
         "F": np.full((30, 40), 0.5, np.float32)}[mode])
    out = load_image(img, "x")
    assert out.pixels.mode == "RGB" and out.pixels.size == (40, 30)
    if mode == "I;16":  # 16-bit values are scaled, not clipped
        assert out.pixels.getpixel((0, 0)) == (195, 195, 195)


def test_transparency_is_composited_on_white():
    img = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    assert load_image(encode(img), "t.png").pixels.getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_is_honoured():
    img = Image.new("RGB", (60, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    out = load_image(encode(img, "JPEG", exif=exif.tobytes()), "phone.jpg")
    assert out.pixels.size == (20, 60)


def test_arrays_and_digest():
    arr = np.zeros((20, 30, 3), np.uint8)
    a, b = load_image(arr), load_image(Image.fromarray(arr))
    assert a.digest == b.digest
    assert load_image(arr.astype(np.uint16) * 257).digest == a.digest
    with pytest.raises(ImageError, match="must be HxW"):
        load_image(np.zeros((4, 4, 2), np.uint8))


def test_decompression_bomb_refused_before_decoding():
    bomb = encode(Image.new("1", (9000, 9000)))  # 81 MP, a few KB on disk
    assert len(bomb) < 100_000
    with pytest.raises(ImageError, match="bomb.png: .*(too large|megapixels)"):
        load_image(bomb, "bomb.png")


def test_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="notes.txt: not an image"):
        load_image(b"hello, world", "notes.txt")
    with pytest.raises(ImageError, match="missing.jpg: no such file"):
        load_image(tmp_path / "missing.jpg")
    data = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    with pytest.raises(ImageError, match="cut.jpg: image data is damaged"):
        load_image(data[: len(data) // 2], "cut.jpg")
    with pytest.raises(ImageError, match="too small"):
        load_image(Image.new("RGB", (4, 4)), "tiny")
