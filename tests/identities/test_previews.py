"""Previews that follow their identity file (``identities.previews``)."""

from __future__ import annotations

from PIL import Image
from store_workers import make_identity

from hyperlora_ext.identities.previews import content, respell, sync_preview


def color(path) -> tuple[int, int, int]:
    with Image.open(path) as img:
        return img.convert("RGB").getpixel((2, 2))


def test_a_preview_shows_the_identity_there_now_or_goes(tmp_path):
    path, preview = tmp_path / "alice.safetensors", tmp_path / "alice.preview.png"
    red, green = make_identity(1, (200, 0, 0)), make_identity(2, (0, 200, 0))
    red.save(path)
    sync_preview(path, preview, lambda: green, known=(content(path), red))  # what this process wrote: not read back
    assert color(preview) == (200, 0, 0)
    sync_preview(path, preview, lambda: green)  # another version there now
    assert color(preview) == (0, 200, 0)
    sync_preview(path, preview, lambda: make_identity(3))  # no face crop: no preview
    assert not preview.exists()
    preview.write_bytes(b"an orphan")
    path.unlink()
    sync_preview(path, preview, lambda: green)
    assert not preview.exists() and content(path) is None


def test_respell_moves_a_preview_to_another_spelling(tmp_path):
    old, new = tmp_path / "Alice.preview.png", tmp_path / "alice.preview.png"
    old.write_bytes(b"face")
    respell(old, new)
    assert [p.name for p in tmp_path.iterdir()] == ["alice.preview.png"] and new.read_bytes() == b"face"
    respell(old, new)  # none left under the old spelling: nothing to do
    assert new.read_bytes() == b"face"
