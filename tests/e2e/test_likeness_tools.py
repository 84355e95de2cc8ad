"""End-to-end: the identity tools in the real WebUIs (A1111 and Forge) through the HTTP API —
likeness in the infotext, the photo check at Create, mixes and sliders by tag, and the
"HyperLoRA weight" X/Y/Z axis. Generations: 256x256, 2 steps, fixed seed (e2e_helpers.BASE).

The ``webui`` fixture starts one server per host for this module; the models folder (and so the
identity folder) is shared with the other e2e modules of the session, so the names here carry
an ``lk_`` prefix and are created with ``overwrite``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re

import numpy as np
import pytest
from e2e_helpers import PLAIN, VARIANT, astronaut_head, axis_index, encode, generate, same, xyz_cells
from e2e_hosts import LDM_PATCHED_HOSTS, bf16_unet
from face_pack import face_image
from PIL import Image

from hyperlora_ext import cli

ALICE = [face_image(pattern=80, seed=s) for s in (1, 2)]
STRANGER = face_image(pattern=-80, seed=9)
BOB = [face_image(pattern=-80, seed=s) for s in (4, 5)]
LIKENESS = "HyperLoRA likeness"
# ldm_patched hosts keep a LoRA-patched UNet's backups for the WebUI's lifetime: in fp32 (--always-cpu) this module
# took a 24 GB rig to 20.6 GB used on Forge Classic (it died mid-module there once), in bf16 to 12.3 GB.
WEBUI_ARGS = bf16_unet(LDM_PATCHED_HOSTS)


def create(webui, name: str, images, **extra) -> dict:
    r = webui.post("/hyperlora/v1/identities", {"name": name, "images": [encode(i) for i in images],
                                                "variant": VARIANT, "overwrite": True, **extra})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def people(webui) -> dict:
    """lk_alice (from two photos of her and one of a stranger, left out) and lk_bob."""
    return {"lk_alice": create(webui, "lk_alice", [*ALICE, STRANGER], drop_flagged=True),
            "lk_bob": create(webui, "lk_bob", BOB)}


def test_create_with_drop_flagged_returns_photo_check(webui, people):
    alice = people["lk_alice"]
    check = alice["photo_check"]
    assert check["threshold"] == pytest.approx(0.3)
    assert [p["name"] for p in check["photos"]] == ["images[0]", "images[1]", "images[2]"]
    assert [p["flagged"] for p in check["photos"]] == [False, False, True]
    assert check["photos"][0]["similarity"] > check["threshold"] > check["photos"][2]["similarity"]
    assert len(alice["crops"]) == 2 and "left out" in alice["skipped"]["images[2]"]
    assert len(people["lk_bob"]["photo_check"]["photos"]) == 2


def test_img2img_records_likeness_per_image(webui, people):
    """img2img of lk_alice's face at low denoising; the infotext of the image scores it. Random SDXL
    weights (the VAE too) keep no face, so the generation inpaints only a corner away from the face
    and the host pastes the photo back around it (overlay): the score comes from the final,
    composited image. With the setting off the entry is gone (the setting is restored afterwards)."""
    mask = Image.new("L", (256, 256), 0)
    mask.paste(255, (200, 200, 256, 256))
    init = {"init_images": [encode(face_image(size=(256, 256), pattern=80))], "mask": encode(mask),
            "denoising_strength": 0.2}
    _, info = generate(webui, f"{PLAIN} <hyperlora:lk_alice:1>", "img2img", **init)
    infotext = info["infotexts"][0]
    found = re.search(rf"{LIKENESS}: lk_alice (-?\d\.\d\d) \(face 1\)(,|$|\n)", infotext)
    assert found, infotext
    assert float(found.group(1)) > 0.3, infotext  # her own face (same pattern as her photos)
    r = webui.post("/sdapi/v1/options", {"hyperlora_likeness_infotext": False})
    assert r.status_code == 200, r.text
    try:
        _, info = generate(webui, f"{PLAIN} <hyperlora:lk_alice:1>", "img2img", **init)
    finally:
        webui.post("/sdapi/v1/options", {"hyperlora_likeness_infotext": True})
    assert LIKENESS not in info["infotexts"][0], info["infotexts"][0]
    assert 'HyperLoRA: "lk_alice (' in info["infotexts"][0], info["infotexts"][0]  # the tag still applied


def test_xyz_weight_axis_equals_direct_generations(webui, people):
    x_type = axis_index(webui, "HyperLoRA weight")
    cells = xyz_cells(webui, x_type, "0, 1", f"{PLAIN} <hyperlora:lk_alice:0.5>")
    zero, _ = generate(webui, f"{PLAIN} <hyperlora:lk_alice:0>")
    one, _ = generate(webui, f"{PLAIN} <hyperlora:lk_alice:1>")
    assert len(cells) == 2 and not same(zero, one)
    # on a mismatch, say which direct generation each cell is (Forge Classic failed this once, 2026-12-07)
    report = [(same(c, zero), same(c, one), round(float(np.abs(c.astype(int) - one.astype(int)).mean()), 3))
              for c in cells]
    assert same(cells[0], zero) and same(cells[1], one), f"per cell (= weight 0, = weight 1, mean |cell - 1|): {report}"


def test_mix_and_slider_apply_by_tag(webui, people):
    r = webui.post("/hyperlora/v1/identities/mix", {"name": "lk_mix", "expression": "0.5*lk_alice + 0.5*lk_bob",
                                                    "overwrite": True})
    assert r.status_code == 200, r.text
    mix = r.json()
    assert [p["name"] for p in mix["parents"]] == ["lk_alice", "lk_bob"]
    r = webui.post("/hyperlora/v1/identities/mix", {"name": "lk_slider", "expression": "lk_alice - lk_bob",
                                                    "overwrite": True})
    assert r.status_code == 200, r.text
    slider = r.json()
    assert slider["options"]["algebra"] == "slider"
    plain, _ = generate(webui, PLAIN)
    mixed, mix_info = generate(webui, f"{PLAIN} <hyperlora:lk_mix:1>")
    slid, slider_info = generate(webui, f"{PLAIN} <hyperlora:lk_slider:1>")
    assert not same(mixed, plain) and not same(slid, plain) and not same(mixed, slid)
    assert f"lk_mix ({mix['hash']}): 1, {VARIANT}" in mix_info["infotexts"][0]
    assert f"lk_slider ({slider['hash']}): 1, {VARIANT}" in slider_info["infotexts"][0]
    assert f"{LIKENESS}: lk_mix " in mix_info["infotexts"][0]  # a mix has a reference embedding: scored
    assert LIKENESS not in slider_info["infotexts"][0]  # a slider has no reference embedding: no score


def cli_likeness(webui, image: Image.Image, name: str, tmp_path) -> str:
    """What ``python -m hyperlora_ext likeness`` prints for ``image`` and the stored identity ``name``."""
    path = tmp_path / f"scored-{len(list(tmp_path.iterdir()))}.png"
    image.save(path)
    identity = webui.models_dir / "hyper_lora" / "identities" / f"{name}.safetensors"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["likeness", str(path), "--identity", str(identity), "--models-dir", str(webui.models_dir)])
    assert code == 0, out.getvalue()
    return out.getvalue().strip()


def test_likeness_after_adetailer_is_of_the_final_image(webui, tmp_path):
    """ADetailer with "skip img2img" starts from the photo itself and repaints the head from scratch
    (denoising 1, the face box dilated to cover it); the infotext's likeness is that of the returned image
    (what the CLI measures on it), not that of the photo ADetailer started from."""
    if not os.environ.get("HYPERLORA_E2E_ADETAILER"):
        pytest.skip("set HYPERLORA_E2E_ADETAILER to an ADetailer checkout")
    head = astronaut_head()
    create(webui, "lk_head", [head])
    before = cli_likeness(webui, head, "lk_head", tmp_path)
    assert re.fullmatch(r"lk_head (0\.9\d|1\.00) \(face 1\)", before), before  # her own photo
    prompt = f"{PLAIN} <hyperlora:lk_head:1>"
    unit = {"ad_model": "mediapipe_face_short", "ad_prompt": prompt, "ad_denoising_strength": 1.0,
            "ad_dilate_erode": 48, "ad_inpaint_only_masked": True, "ad_use_steps": True, "ad_steps": 2}
    image, info = generate(webui, prompt, "img2img", init_images=[encode(head)],
                           denoising_strength=0.5, alwayson_scripts={"ADetailer": {"args": [True, True, unit]}})
    infotext = info["infotexts"][0]
    assert "ADetailer model: mediapipe_face_short" in infotext, infotext  # ADetailer ran and found the face
    assert not same(image, np.asarray(head)), "ADetailer changed nothing"
    found = re.search(rf"{LIKENESS}: (lk_head [^,\n]+)", infotext)
    assert found, infotext
    final = cli_likeness(webui, Image.fromarray(image), "lk_head", tmp_path)
    print(f"\n[e2e] {webui.host} likeness before ADetailer (the photo): {before}; after: {found.group(1)}")
    assert found.group(1) == final, (found.group(1), final)  # the score of the image returned ...
    assert final != before, final  # ... which ADetailer repainted: not the photo's score
