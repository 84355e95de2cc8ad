"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest
from face_pack import BACKGROUND
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


PHOTO = "photo of a person"
TRIGGER = "fcsks fxhks fhyks, "
# Prompts carry the trigger words themselves, so that a tag can change the image only through its LoRA
# (the automatic trigger words are tested on their own).
PLAIN = TRIGGER + PHOTO
BASE = {"negative_prompt": "", "steps": 2, "width": 256, "height": 256, "seed": 1, "sampler_name": "Euler",
        "cfg_scale": 5, "batch_size": 1, "n_iter": 1}
TIMINGS: dict[str, list[float]] = {}


def generate(webui, prompt: str, endpoint: str = "txt2img", **extra) -> tuple[np.ndarray, dict]:
    t0 = time.monotonic()
    r = webui.post(f"/sdapi/v1/{endpoint}", {**BASE, "prompt": prompt, **extra})
    assert r.status_code == 200, r.text[:2000]
    TIMINGS.setdefault(f"{webui.host} {endpoint}", []).append(time.monotonic() - t0)
    body = r.json()
    return decode(body["images"][0]), info_of(body)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b)


def xyz_cells(webui, x_type: int, x_values: str, prompt: str) -> list[np.ndarray]:
    """A txt2img X/Y/Z plot along x only (axis index ``x_type``), sub images included: the cells. The script's
    arguments are its defaults from ``/sdapi/v1/script-info`` with these set by label, since the hosts' X/Y/Z
    scripts differ (reForge adds "Draw individual labels", "Skip final grid generation", "Items per grid")."""
    infos = webui.get("/sdapi/v1/script-info").json()
    xyz = next(s for s in infos if s["name"] == "x/y/z plot" and not s["is_img2img"])
    labels = [a["label"] for a in xyz["args"]]
    args = [a.get("value") for a in xyz["args"]]
    wanted = {"X type": x_type, "X values": x_values, "Y type": 0, "Y values": "", "Z type": 0, "Z values": "",
              "Draw legend": False, "Include Sub Images": True, "Include Sub Grids": False, "Keep -1 for seeds": False}
    for label, value in wanted.items():
        args[labels.index(label)] = value  # the first of that label: "X values" is also the hidden dropdown's
    for i, label in enumerate(labels):
        if label in ("X values", "Y values", "Z values") and i != labels.index(label):
            args[i] = []  # the axis's dropdown of choices (unused: the text box is read)
    r = webui.post("/sdapi/v1/txt2img", {**BASE, "prompt": prompt, "script_name": "x/y/z plot", "script_args": args})
    assert r.status_code == 200, r.text[:2000]
    return [image for image in map(decode, r.json()["images"]) if image.shape == (BASE["height"], BASE["width"], 3)]


def axis_index(webui, label: str) -> int:
    """Index of ``label`` in the txt2img X/Y/Z "X type" list, read from the host at test time.
    Our axes are appended in ``on_before_ui`` after the host's own and those appended earlier:
    A1111 1.10.1 lists 38 common + 4 txt2img-only axes, then built-in Hypertile's 9 (its own
    on_before_ui, which runs first), so ours are 51-53; Forge lists 39 + 4, then its built-in
    ControlNet's 11 (appended at import), so ours are 54-56 — other extensions shift them."""
    infos = webui.get("/sdapi/v1/script-info").json()
    xyz = next(s for s in infos if s["name"] == "x/y/z plot" and not s["is_img2img"])
    return xyz["args"][0]["choices"].index(label)


def astronaut_head() -> Image.Image:
    """A real face both detectors find once: skimage's astronaut, head only, on the synthetic pack's
    blue background (ADetailer's mediapipe finds the real face; the synthetic SCRFD finds one
    skin blob there and nothing on the background)."""
    skimage_data = pytest.importorskip("skimage.data")
    head = Image.fromarray(skimage_data.astronaut()).crop((160, 30, 290, 200))
    head = head.resize((int(head.width * 1.3), int(head.height * 1.3)))
    image = Image.new("RGB", (256, 256), BACKGROUND)
    image.paste(head, ((256 - head.width) // 2, (256 - head.height) // 2))
    return image
