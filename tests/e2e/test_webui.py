"""End-to-end: the real WebUI (A1111 and Forge, CPU, random full-size SDXL) through its HTTP API.

Each host runs once per module (``webui`` fixture); tests share the identities created by the
``identities`` fixture. Generations: 256x256, 2 steps, fixed seed.
"""

from __future__ import annotations

import html
import os
import re
import time

import numpy as np
import pytest
from e2e_helpers import VARIANT, decode, encode, info_of
from face_pack import face_image
from PIL import Image

PHOTO = "photo of a person"
TRIGGER = "fcsks fxhks fhyks, "
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


@pytest.fixture(scope="module")
def identities(webui):
    """alice and bob created through the API; both also saved as LoRA files."""
    alice = [encode(face_image(feature=(170, 110, 90), seed=s)) for s in (1, 2)]
    sky = encode(Image.new("RGB", (200, 200), (20, 40, 160)))
    t0 = time.monotonic()
    r = webui.post("/hyperlora/v1/identities", {"name": "alice", "images": [*alice, sky], "variant": VARIANT})
    TIMINGS[f"{webui.host} create identity (first, loads model)"] = [time.monotonic() - t0]
    assert r.status_code == 200, r.text
    created = r.json()
    t0 = time.monotonic()
    r = webui.post("/hyperlora/v1/identities", {"name": "bob", "images": [encode(face_image(feature=(250, 215, 190),
                                                                                           seed=4))]})
    TIMINGS[f"{webui.host} create identity (model loaded)"] = [time.monotonic() - t0]
    assert r.status_code == 200, r.text
    for name in ("alice", "bob"):
        r = webui.post(f"/hyperlora/v1/identities/{name}/lora", {"file_name": f"{name}_lora"})
        assert r.status_code == 200, r.text
    return created


@pytest.fixture(scope="module")
def baseline(webui):
    return generate(webui, PHOTO)[0]


def test_identity_created_with_crops_and_skips(webui, identities):
    assert identities["name"] == "alice" and len(identities["crops"]) == 2
    assert identities["skipped"] == {"images[2]": "no face found"}
    listed = webui.get("/hyperlora/v1/identities").json()["identities"]
    assert {i["name"] for i in listed} == {"alice", "bob"}
    assert (webui.data_dir / "models" / "Lora" / "alice_lora.safetensors").is_file()


def test_extra_networks_card(webui, identities):
    r = webui.get("/sd_extra_networks/get-single-card?page=hyperlora&tabname=txt2img&name=alice")
    assert r.status_code == 200, r.text
    card = html.unescape(r.json()["html"])
    assert "<hyperlora:alice:0.85>" in card
    thumb = re.search(r'src="\./(sd_extra_networks/thumb\?[^"]+)"', card)
    assert thumb, card
    preview = webui.get("/" + thumb.group(1))
    assert preview.status_code == 200 and preview.content[:4] == b"\x89PNG"


def test_tag_changes_image_and_removal_restores_it(webui, identities, baseline):
    tagged, info = generate(webui, f"{PHOTO} <hyperlora:alice:1>")
    assert not same(tagged, baseline)
    assert f"alice ({identities['hash']}): 1, {VARIANT}" in info["infotexts"][0]
    assert info["all_prompts"][0] == f"{PHOTO} <hyperlora:alice:1>"
    after, _ = generate(webui, PHOTO)
    assert same(after, baseline), "weights did not come back exactly"


def test_tag_and_lora_apply_together_in_any_order(webui, identities, baseline):
    alice_only, _ = generate(webui, f"{PHOTO} <hyperlora:alice:1>")
    bob_only, _ = generate(webui, f"{TRIGGER}{PHOTO} <lora:bob_lora:1>")
    first, _ = generate(webui, f"{PHOTO} <hyperlora:alice:1><lora:bob_lora:1>")
    second, _ = generate(webui, f"{PHOTO} <lora:bob_lora:1><hyperlora:alice:1>")
    assert same(first, second), "tag order changed the result"
    assert not same(first, alice_only) and not same(first, bob_only)
    after, _ = generate(webui, PHOTO)
    assert same(after, baseline)


def test_saved_lora_is_listed_and_equals_the_tag(webui, identities):
    names = {x["name"] for x in webui.get("/sdapi/v1/loras").json()}
    assert {"alice_lora", "bob_lora"} <= names
    by_tag, _ = generate(webui, f"{TRIGGER}{PHOTO} <hyperlora:alice:0.8>")
    by_file, _ = generate(webui, f"{TRIGGER}{PHOTO} <lora:alice_lora:0.8>")
    assert same(by_tag, by_file)


def test_base_lora_weight(webui, identities):
    plain, _ = generate(webui, f"{PHOTO} <hyperlora:alice:1>")
    with_base, info = generate(webui, f"{PHOTO} <hyperlora:alice:1:0.4>")
    assert not same(plain, with_base) and "base 0.4" in info["infotexts"][0]


def test_script_args_apply_the_identity(webui, identities):
    by_tag, _ = generate(webui, f"{PHOTO} <hyperlora:alice:1>")
    by_args, _ = generate(webui, PHOTO, alwayson_scripts={"HyperLoRA": {"args": [True, "alice", 1.0, 0.0]}})
    assert same(by_tag, by_args)


def test_unknown_identity_warns_and_generation_continues(webui, identities, baseline):
    image, info = generate(webui, f"{PHOTO} <hyperlora:ghost:1>")
    assert same(image, baseline)
    assert "no identity named 'ghost'" in info["extra_generation_params"]["HyperLoRA warnings"]


def test_hires_fix(webui, identities):
    hires = {"enable_hr": True, "hr_scale": 1.25, "hr_upscaler": "Latent", "hr_second_pass_steps": 1,
             "denoising_strength": 0.5}
    plain, _ = generate(webui, PHOTO, **hires)
    tagged, _ = generate(webui, f"{PHOTO} <hyperlora:alice:1>", **hires)
    hr_only, info = generate(webui, PHOTO, hr_prompt=f"{PHOTO} <hyperlora:alice:1>", **hires)
    assert plain.shape == (320, 320, 3)
    assert not same(plain, tagged) and not same(plain, hr_only)
    assert "Hires HyperLoRA" in info["extra_generation_params"]
    again, _ = generate(webui, PHOTO, **hires)
    assert same(again, plain)


def test_img2img(webui, identities):
    init = {"init_images": [encode(face_image(size=(256, 256)))], "denoising_strength": 0.6}
    plain, _ = generate(webui, PHOTO, "img2img", **init)
    tagged, info = generate(webui, f"{PHOTO} <hyperlora:alice:1>", "img2img", **init)
    assert not same(plain, tagged) and "HyperLoRA" in info["extra_generation_params"]
    again, _ = generate(webui, PHOTO, "img2img", **init)
    assert same(plain, again)


@pytest.mark.parametrize("method,path,payload,status,fragment", [
    ("post", "/hyperlora/v1/identities", {"name": "x", "images": ["%%%"]}, 400, "not valid base64"),
    ("post", "/hyperlora/v1/identities", {"name": "sky", "images": [encode(Image.new("RGB", (64, 64)))]}, 422,
     "No usable face"),
    ("post", "/hyperlora/v1/identities", {"name": "x", "images": []}, 400, "images is empty"),
    ("post", "/hyperlora/v1/identities", {"name": "x"}, 422, "images"),
    ("post", "/hyperlora/v1/identities", {"name": "alice", "images": ["AAAA"]}, 409, "already exists"),
    ("get", "/hyperlora/v1/identities/ghost", None, 404, "ghost"),
    ("post", "/hyperlora/v1/identities/alice/lora", {"file_name": "alice_lora"}, 409, "already exists"),
])
def test_bad_requests_get_4xx(webui, identities, method, path, payload, status, fragment):
    r = webui.post(path, payload) if method == "post" else webui.get(path)
    assert r.status_code == status, r.text
    assert fragment in r.text


def test_adetailer_pass_applies_the_tag(webui, identities):
    if not os.environ.get("HYPERLORA_E2E_ADETAILER"):
        pytest.skip("set HYPERLORA_E2E_ADETAILER to an ADetailer checkout")
    skimage_data = pytest.importorskip("skimage.data")
    face = Image.fromarray(skimage_data.astronaut()).resize((256, 256))
    init = {"init_images": [encode(face)], "denoising_strength": 0.05}

    def adetailer(prompt: str) -> dict:
        unit = {"ad_model": "mediapipe_face_short", "ad_prompt": prompt, "ad_denoising_strength": 0.5,
                "ad_inpaint_only_masked": True, "ad_use_steps": True, "ad_steps": 2}
        return {"ADetailer": {"args": [True, False, unit]}}

    without, info0 = generate(webui, PHOTO, "img2img", **init, alwayson_scripts=adetailer("a face"))
    assert "ADetailer model" in info0["infotexts"][0], "ADetailer found no face"
    with_tag, info = generate(webui, PHOTO, "img2img", **init, alwayson_scripts=adetailer("a face <hyperlora:alice:1>"))
    assert "ADetailer model" in info["infotexts"][0]
    assert not same(without, with_tag), "the ADetailer pass did not apply the tag"
    inherited, info2 = generate(webui, f"{PHOTO} <hyperlora:alice:1>", "img2img", **init,
                                alwayson_scripts=adetailer(""))
    first_pass_only, _ = generate(webui, f"{PHOTO} <hyperlora:alice:1>", "img2img", **init)
    assert "ADetailer model" in info2["infotexts"][0] and not same(inherited, first_pass_only)


def test_report_timings(webui, identities):
    """Prints the measured timings (not an assertion on speed)."""
    print(f"\n[e2e] {webui.host}: startup {webui.startup_seconds:.0f} s")
    for key, values in TIMINGS.items():
        if key.startswith(webui.host):
            print(f"[e2e] {key}: n={len(values)} mean {sum(values) / len(values):.1f} s")
