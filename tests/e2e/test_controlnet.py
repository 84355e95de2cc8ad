"""End-to-end: a ControlNet unit and ``<hyperlora:NAME:w>`` in one generation (txt2img with hires fix, img2img).

A1111 runs with the sd-webui-controlnet extension ($HYPERLORA_E2E_CONTROLNET, skipped without it), the Forge hosts
with their built-in ControlNet. All load the random SDXL "mid" ControlNet built by controlnet_model.py. A unit is
proven to have run by its detected map among the returned images (reForge's API drops them: there by the unit's
own "ControlNet Method NAME patched." log line) *and* by a changed result: a request naming an unknown model still
answers 200 with a plain image on Forge.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from e2e_helpers import BASE, PLAIN, TIMINGS, decode, encode, info_of, same
from e2e_hosts import API_WITHOUT_DETECTED_MAPS, FORGE_HOSTS, NEW_FORGE_HOSTS, controlnet_patched
from face_pack import face_image
from PIL import Image, ImageDraw
from webui_server import HOSTS, WebUI, controlnet_model, require

NAME = "cnet_carol"
TAG = f" <hyperlora:{NAME}:1>"
HIRES = {"enable_hr": True, "hr_scale": 1.25, "hr_upscaler": "Latent", "hr_second_pass_steps": 1,
         "denoising_strength": 0.5}
NONE = {"a1111": "none", **dict.fromkeys(FORGE_HOSTS, "None")}  # the "no preprocessor" names


@pytest.fixture(scope="module", params=list(HOSTS))
def cn_webui(request, tmp_path_factory, e2e_models):
    """A WebUI with ControlNet and the random SDXL ControlNet model, plus one identity."""
    host = request.param
    require(host, controlnet=True)
    server = WebUI(host, tmp_path_factory.mktemp(f"{host}-cnet-data"), e2e_models(host), controlnet=True)
    server.start()
    print(f"\n[e2e] {host} with ControlNet answered after {server.startup_seconds:.0f} s")
    try:
        r = server.post("/hyperlora/v1/identities",
                        {"name": NAME, "images": [encode(face_image(feature=(190, 120, 100), seed=5))]})
        assert r.status_code in (200, 409), r.text  # 409: another module of this session made it already
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cn_model(cn_webui) -> str:
    """The model's name as the host lists it (Forge needs exactly ``"<stem> [<hash>]"``)."""
    stem = controlnet_model().stem
    names = cn_webui.get("/controlnet/model_list").json()["model_list"]
    listed = [n for n in names if n.startswith(stem)]
    assert listed, f"{stem} not among the host's ControlNet models {names}"
    return listed[0]


def _edges_image() -> str:
    """A control image with clear edges (shapes on black)."""
    image = Image.new("RGB", (256, 256))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, 150, 200), fill=(255, 255, 255))
    draw.ellipse((120, 90, 230, 220), fill=(120, 200, 60))
    return encode(image)


def _unit(model: str, module: str, image: str) -> dict:
    return {"enabled": True, "module": module, "model": model, "image": image, "weight": 1.0,
            "processor_res": 256, "threshold_a": 100, "threshold_b": 200, "guidance_start": 0.0,
            "guidance_end": 1.0, "pixel_perfect": False, "save_detected_map": True}


def _run(webui: WebUI, prompt: str, endpoint: str = "txt2img", units: list[dict] | None = None,
         hyperlora_args: list | None = None, hyperlora_first: bool = False, **extra) -> tuple[list[np.ndarray], dict]:
    """One generation; every returned image (the result first, then any detected maps) and the info."""
    scripts = {}
    if units is not None:
        scripts["ControlNet"] = {"args": units}
    if hyperlora_args is not None:
        scripts["HyperLoRA"] = {"args": hyperlora_args}
        if hyperlora_first:
            scripts = {"HyperLoRA": scripts.pop("HyperLoRA"), **scripts}
    if endpoint == "txt2img" and extra.get("enable_hr") and webui.host in NEW_FORGE_HOSTS:
        extra["hr_additional_modules"] = ["Use same choices"]  # Forge's API fails on hires without it
    t0, log_start = time.monotonic(), webui.log_mark()
    r = webui.post(f"/sdapi/v1/{endpoint}", {**BASE, "prompt": prompt, "alwayson_scripts": scripts, **extra})
    assert r.status_code == 200, r.text[:2000]
    TIMINGS.setdefault(f"{webui.host} {endpoint} + ControlNet", []).append(time.monotonic() - t0)
    body = r.json()
    return [decode(b) for b in body["images"]], {**info_of(body), "host_log": webui.log_since(log_start)}


def _assert_unit_ran(webui: WebUI, with_unit: tuple[list[np.ndarray], dict], without: np.ndarray, what: str,
                     module: str) -> None:
    images, info = with_unit
    if webui.host in API_WITHOUT_DETECTED_MAPS:
        assert module in controlnet_patched(info["host_log"]), f"{what}: the ControlNet unit did not run"
    else:
        assert len(images) >= 2, f"{what}: no detected map came back: the ControlNet unit did not run"
    assert not same(images[0], without), f"{what}: the ControlNet unit did not change the image"


def test_controlnet_and_tag_txt2img_hires(cn_webui, cn_model):
    """canny unit + tag with hires fix: both apply; in any order and history; ControlNet alone restores."""
    unit = [_unit(cn_model, "canny", _edges_image())]
    [plain], _ = _run(cn_webui, PLAIN, **HIRES)
    cn_before, cn_info = _run(cn_webui, PLAIN, units=unit, **HIRES)
    _assert_unit_ran(cn_webui, (cn_before, cn_info), plain, "txt2img", "canny")
    if cn_webui.host not in API_WITHOUT_DETECTED_MAPS:
        edges = cn_before[1]
        assert np.isin(edges, (0, 255)).mean() > 0.9 and edges.max() == 255, "the canny map is not an edge map"
    assert cn_before[0].shape == (320, 320, 3)

    both, info = _run(cn_webui, PLAIN + TAG, units=unit, **HIRES)
    assert f"{NAME} (" in info["extra_generation_params"].get("HyperLoRA", ""), info["extra_generation_params"]
    [tag_only], _ = _run(cn_webui, PLAIN + TAG, **HIRES)
    assert not same(both[0], cn_before[0]), "the tag did not apply beside the ControlNet unit"
    assert not same(both[0], tag_only) and not same(tag_only, plain), "the unit did not apply beside the tag"

    # Enabled the other way round (HyperLoRA's own script first, ControlNet second), after a tag-only run.
    both_again, _ = _run(cn_webui, PLAIN, units=unit, hyperlora_args=[True, NAME, 1.0, 0.0], hyperlora_first=True,
                         **HIRES)
    assert same(both_again[0], both[0]), "the order of enabling ControlNet and HyperLoRA changed the result"

    cn_after, _ = _run(cn_webui, PLAIN, units=unit, **HIRES)
    assert same(cn_after[0], cn_before[0]), "ControlNet alone no longer gives the pixels it gave before HyperLoRA"


def test_controlnet_and_tag_img2img(cn_webui, cn_model):
    """Unit without preprocessor + tag on img2img: both apply; ControlNet alone restores exactly."""
    init = {"init_images": [encode(face_image(size=(256, 256)))], "denoising_strength": 0.6}
    unit = [_unit(cn_model, NONE[cn_webui.host], _edges_image())]
    # A1111 + sd-webui-controlnet: the process's first ControlNet img2img differed by 1/255 in a few pixels
    # from the same request repeated, before any tag was used (observed 2026-12-02). So the reference is a
    # repeat, and the first one is reported, not asserted.
    first, _ = _run(cn_webui, PLAIN, "img2img", units=unit, **init)
    cn_before, cn_info = _run(cn_webui, PLAIN, "img2img", units=unit, **init)
    cn_repeat, _ = _run(cn_webui, PLAIN, "img2img", units=unit, **init)
    print(f"\n[e2e] {cn_webui.host}: first ControlNet img2img equals the repeats: {same(first[0], cn_before[0])}")
    assert same(cn_repeat[0], cn_before[0]), "the host's ControlNet img2img is not reproducible (before any tag)"
    [plain], _ = _run(cn_webui, PLAIN, "img2img", **init)
    _assert_unit_ran(cn_webui, (cn_before, cn_info), plain, "img2img", NONE[cn_webui.host])
    both, info = _run(cn_webui, PLAIN + TAG, "img2img", units=unit, **init)
    assert "HyperLoRA" in info["extra_generation_params"]
    assert not same(both[0], cn_before[0]) and not same(both[0], plain)
    cn_after, _ = _run(cn_webui, PLAIN, "img2img", units=unit, **init)
    assert same(cn_after[0], cn_before[0]), "ControlNet alone no longer gives the pixels it gave before HyperLoRA"
