"""Two people in one picture: ADetailer's ``[SEP]`` gives each detected face its own identity.

The picture holds two heads side by side (skimage's astronaut, and the same mirrored), on the
synthetic face pack's background: ADetailer's mediapipe finds both faces, and so does the test face
pack's detector for the per-face likeness. ADetailer runs with "skip img2img" (random SDXL weights
draw no faces), one inpainting pass per face, left to right (Settings -> ADetailer -> Sort bounding
boxes by -> Position (left to right)). Each pass works on a square crop around its face (inpaint
width/height 256 x 256, so ADetailer does not widen the crop to the picture's aspect ratio): the
two crops do not overlap, so each half of the result must equal, pixel for pixel, the same request
with that half's identity on both faces.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from e2e_helpers import TRIGGER, VARIANT, astronaut_head, encode, generate, same
from face_pack import BACKGROUND, face_image
from PIL import Image, ImageOps

WEBUI_SETTINGS = {"ad_bbox_sortby": "Position (left to right)"}
WIDTH, HEIGHT = 512, 256
FACE_TEXT = "photo of a face"


def two_heads() -> Image.Image:
    head = astronaut_head()  # 256 x 256, the head in the middle
    picture = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    picture.paste(head, (0, 0))
    picture.paste(ImageOps.mirror(head), (256, 0))
    return picture


@pytest.fixture(scope="module")
def people(webui):
    if not os.environ.get("HYPERLORA_E2E_ADETAILER"):
        pytest.skip("set HYPERLORA_E2E_ADETAILER to an ADetailer checkout")
    for name, photos in (("tp_alice", [astronaut_head()]), ("tp_bob", [face_image(pattern=-80, seed=4)])):
        r = webui.post("/hyperlora/v1/identities", {"name": name, "images": [encode(p) for p in photos],
                                                    "variant": VARIANT, "overwrite": True})
        assert r.status_code == 200, r.text
    return two_heads()


def faces(webui, picture: Image.Image, ad_prompt: str) -> tuple[np.ndarray, str]:
    """img2img with ADetailer only ("skip img2img"), one pass per face; (image, infotext)."""
    unit = {"ad_model": "mediapipe_face_short", "ad_prompt": ad_prompt, "ad_denoising_strength": 1.0,
            "ad_inpaint_only_masked": True, "ad_use_inpaint_width_height": True, "ad_inpaint_width": 256,
            "ad_inpaint_height": 256, "ad_use_steps": True, "ad_steps": 2}
    image, info = generate(webui, TRIGGER + "two people", "img2img", init_images=[encode(picture)],
                           width=WIDTH, height=HEIGHT, denoising_strength=0.5,
                           alwayson_scripts={"ADetailer": {"args": [True, True, unit]}})
    return image, info["infotexts"][0]


def per_face(first: str, second: str) -> str:
    return f"{TRIGGER}<hyperlora:{first}:0.85> {FACE_TEXT} [SEP] {TRIGGER}<hyperlora:{second}:0.85> {FACE_TEXT}"


def test_adetailer_sep_gives_each_face_its_identity(webui, people):
    picture = people
    plain, _ = faces(webui, picture, f"{TRIGGER}{FACE_TEXT}")
    assert not same(plain, np.asarray(picture)), "ADetailer found no face (the picture came back unchanged)"
    both, info = faces(webui, picture, per_face("tp_alice", "tp_bob"))
    all_alice, _ = faces(webui, picture, per_face("tp_alice", "tp_alice"))
    all_bob, _ = faces(webui, picture, per_face("tp_bob", "tp_bob"))
    left, right = slice(0, WIDTH // 2), slice(WIDTH // 2, WIDTH)
    for name, image in (("[SEP]", both), ("alice on both", all_alice), ("bob on both", all_bob)):
        for half in (left, right):
            assert not same(image[:, half], plain[:, half]), f"{name}: a face pass applied no identity"
    diff_left = int((both[:, left] != all_alice[:, left]).any(axis=2).sum())
    diff_right = int((both[:, right] != all_bob[:, right]).any(axis=2).sum())
    print(f"\n[e2e] {webui.host}: [SEP] vs one identity on both faces: {diff_left} px differ on the left "
          f"(alice), {diff_right} px on the right (bob)")
    assert diff_left == 0, "the left face is not the one alice gives"
    assert diff_right == 0, "the right face is not the one bob gives (it depends on the first pass?)"
    assert not same(both[:, left], all_bob[:, left]) and not same(both[:, right], all_alice[:, right])
    assert webui.log_text().count("mediapipe: 2 detected") >= 4, "ADetailer did not find both faces every time"

    inner = re.search(r"HyperLoRA inner passes: \"?([^\n\"]+)", info)
    assert inner, info
    assert re.fullmatch(r"tp_alice \([0-9a-f]+\): 0\.85, \S+; tp_bob \([0-9a-f]+\): 0\.85, \S+", inner.group(1)), \
        inner.group(1)
    likeness = re.search(r"HyperLoRA likeness: \"?([^\n\"]+)", info)
    assert likeness, info
    print(f"[e2e] {webui.host}: HyperLoRA likeness: {likeness.group(1)}")
    assert "tp_alice " in likeness.group(1) and "tp_bob " in likeness.group(1)

    again, _ = faces(webui, picture, f"{TRIGGER}{FACE_TEXT}")
    assert same(again, plain), "the weights did not come back exactly after the passes"


def regional(webui, prompt: str) -> tuple[np.ndarray, str]:
    """txt2img with Regional Prompter: two columns (ADDCOL), latent mode, LoRAs only in their regions
    (LoRA text encoder / U-Net weights outside the regions 0), debug output on."""
    args = [True, True, "Matrix", "Columns", "Mask", "Prompt", "1,1", "", False, False, False, "Latent", False,
            "0", "0", "0", "", "0", "0", False]
    image, info = generate(webui, prompt, width=WIDTH, height=HEIGHT,
                           alwayson_scripts={"Regional Prompter": {"args": args}})
    return image, info["infotexts"][0]


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def test_regional_prompter_gives_each_region_its_saved_lora(webui, people):
    """The Save as LoRA route: each identity saved as a LoRA file, ``<lora:NAME:w>`` per region. In latent
    mode each region's noise prediction has its own LoRA weights, and the regions are mixed after every
    step, so a half is not exactly the single-identity image's half; it must be far closer to the image
    with its own identity on both sides than to the one with the other identity."""
    if not os.environ.get("HYPERLORA_E2E_REGIONAL_PROMPTER"):
        pytest.skip("set HYPERLORA_E2E_REGIONAL_PROMPTER to a Regional Prompter checkout")
    for name in ("tp_alice", "tp_bob"):
        r = webui.post(f"/hyperlora/v1/identities/{name}/lora", {"file_name": f"{name}_lora", "overwrite": True})
        assert r.status_code == 200, r.text

    def prompt(first: str | None, second: str | None) -> str:
        lora = {None: ""} | {n: f" <lora:{n}_lora:0.8>" for n in ("tp_alice", "tp_bob")}
        return f"{TRIGGER}photo of a person{lora[first]} ADDCOL {TRIGGER}photo of a person{lora[second]}"

    both, info = regional(webui, prompt("tp_alice", "tp_bob"))
    assert "RP Active: True" in info, info
    all_alice, _ = regional(webui, prompt("tp_alice", "tp_alice"))
    all_bob, _ = regional(webui, prompt("tp_bob", "tp_bob"))
    none, _ = regional(webui, prompt(None, None))
    left, right = slice(0, WIDTH // 2), slice(WIDTH // 2, WIDTH)
    near = {"left (alice)": (distance(both[:, left], all_alice[:, left]), distance(both[:, left], all_bob[:, left])),
            "right (bob)": (distance(both[:, right], all_bob[:, right]), distance(both[:, right], all_alice[:, right]))}
    print(f"\n[e2e] {webui.host}: Regional Prompter, mean |difference| to own / other identity: {near}; "
          f"to no LoRA: {distance(both, none):.2f}")
    assert "LoRA regioner" in webui.log_text(), "Regional Prompter's LoRA regioner did not run"
    for half, (own, other) in near.items():
        assert own < 0.5 * other, f"{half}: not its own region's LoRA ({own:.2f} vs {other:.2f})"
    assert not same(both, none)
