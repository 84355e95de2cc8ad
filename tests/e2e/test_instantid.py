"""End-to-end: the official "T2I + InstantID" workflow beside ``<hyperlora:NAME:1>`` in one txt2img generation.

InstantID is two ControlNet units, in this order: the face embedding through the InstantID IP-Adapter
(A1111 + sd-webui-controlnet: preprocessor ``instant_id_face_embedding``; Forge: ``InsightFace (InstantID)``)
and the face keypoints through the InstantID ControlNet (``instant_id_face_keypoints`` on both). The models are
random: the IP-Adapter from instantid_model.py, the ControlNet the random SDXL one from controlnet_model.py
under an ``instant_id`` name (both hosts recognise InstantID by the file name). InstantID and HyperLoRA read one
antelopev2 folder (the synthetic pack of tests/face_pack.py: the host's insightface folder is a link to ours).

Proof that the units ran: the keypoints map (the five coloured InstantID dots) comes back among the images
(reForge's API drops the detected maps: there both units' "ControlNet Method NAME patched." log lines), the result
differs from the same request without units, and the IP-Adapter unit alone changes the image
differently for another face (the embedding is the face's). A request naming an unknown model answers 200 with
a plain image on Forge, so the status code proves nothing.

Both orders in one process each: HyperLoRA first (identity + tag, then InstantID, then HyperLoRA again: same
identity hash, same pixels) and, after a restart, InstantID first (then a HyperLoRA identity from the same
photo: same hash; then the tag and both together: the pixels of the first process).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from e2e_helpers import BASE, PLAIN, TIMINGS, decode, encode, info_of, same
from e2e_hosts import API_WITHOUT_DETECTED_MAPS, FORGE_HOSTS, LDM_PATCHED_HOSTS, bf16_unet, controlnet_patched
from face_pack import face_image
from webui_server import HOSTS, INSTANTID_CONTROLNET, INSTANTID_IP_ADAPTER, WebUI, require

NAME = "iid_erin"
TAG = f" <hyperlora:{NAME}:1>"
# The identity's photo and InstantID's face image. Forge's InstantID preprocessors hand insightface the RGB array
# as it is (insightface expects BGR; sd-webui-controlnet and HyperLoRA convert): these colours (red = blue) let the
# synthetic detector find the face in either channel order, as a real detector does.
IID_COLOURS = {"skin": (220, 170, 220), "background": (40, 40, 40)}
FACE = face_image(feature=(185, 125, 185), seed=5, **IID_COLOURS)
OTHER_FACE = face_image(feature=(165, 105, 165), seed=9, pattern=-60, **IID_COLOURS)
EMBEDDING = {"a1111": "instant_id_face_embedding", **dict.fromkeys(FORGE_HOSTS, "InsightFace (InstantID)")}
KEYPOINTS = "instant_id_face_keypoints"
DOTS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)]  # the keypoints' colours
# With a fp32 UNet (--always-cpu), its LoRA backups, ControlNet and the IP-Adapter, reForge was OOM-killed at 22.7 GB
# in a 24 GB rig: the ldm_patched hosts run this module with the UNet in bf16 (native bf16 CPUs).
WEBUI_ARGS = bf16_unet(LDM_PATCHED_HOSTS)


@pytest.fixture(scope="module", params=list(HOSTS))
def iid_webui(request, tmp_path_factory, e2e_models):
    """A WebUI with ControlNet and the InstantID models; one identity made before any InstantID use."""
    host = request.param
    require(host, controlnet=True)
    server = WebUI(host, tmp_path_factory.mktemp(f"{host}-iid-data"), e2e_models(host), instantid=True,
                   args=WEBUI_ARGS.get(host))
    server.start()
    print(f"\n[e2e] {host} with ControlNet + InstantID models answered after {server.startup_seconds:.0f} s")
    try:
        yield server
    finally:
        server.stop()


def _listed(webui: WebUI, file_name: str) -> str:
    """The model's name as the host lists it (``"<stem> [<hash>]"``)."""
    stem = file_name.rsplit(".", 1)[0]
    names = webui.get("/controlnet/model_list").json()["model_list"]
    listed = [n for n in names if n.startswith(stem)]
    assert listed, f"{stem} not among the host's ControlNet models {names}"
    return listed[0]


def _units(webui: WebUI, face=FACE, keypoints: bool = True) -> list[dict]:
    common = {"enabled": True, "weight": 1.0, "processor_res": 512, "guidance_start": 0.0, "guidance_end": 1.0,
              "pixel_perfect": False, "save_detected_map": True, "image": encode(face)}
    units = [{**common, "module": EMBEDDING[webui.host], "model": _listed(webui, INSTANTID_IP_ADAPTER)}]
    if keypoints:
        units.append({**common, "module": KEYPOINTS, "model": _listed(webui, INSTANTID_CONTROLNET)})
    return units


def _run(webui: WebUI, prompt: str, units: list[dict] | None = None) -> tuple[list[np.ndarray], dict]:
    """One txt2img; every returned image (the result first, then any detected maps) and the info."""
    scripts = {"ControlNet": {"args": units}} if units else {}
    t0, log_start = time.monotonic(), webui.log_mark()
    r = webui.post("/sdapi/v1/txt2img", {**BASE, "prompt": prompt, "alwayson_scripts": scripts})
    assert r.status_code == 200, r.text[:2000]
    TIMINGS.setdefault(f"{webui.host} txt2img + InstantID" if units else f"{webui.host} txt2img", []).append(
        time.monotonic() - t0)
    body = r.json()
    return [decode(b) for b in body["images"]], {**info_of(body), "host_log": webui.log_since(log_start)}


def _dots(rgb: np.ndarray) -> list[int]:
    """Pixels of each keypoint colour (within 40 per channel: a host may resize the map)."""
    return [int((np.abs(rgb.astype(int) - c).max(axis=-1) <= 40).sum()) for c in DOTS]


def _keypoints_map(images: list[np.ndarray]) -> np.ndarray:
    """The InstantID keypoints map among the detected maps: mostly black, with all five coloured dots."""
    for image in images[1:]:
        rgb = image[..., :3]
        if min(_dots(rgb)) > 10 and (rgb.max(axis=-1) < 8).mean() > 0.5:
            return rgb
    raise AssertionError(f"no InstantID keypoints map among the {len(images) - 1} detected maps "
                         f"(shapes {[i.shape for i in images[1:]]}): the keypoints unit did not run")


def _units_ran(webui: WebUI, run: tuple[list[np.ndarray], dict]) -> np.ndarray | None:
    """Both InstantID units ran in this request: its keypoints map, or None where the host's API returns no
    detected maps (then both units' log lines, embedding first, are the proof)."""
    images, info = run
    if webui.host in API_WITHOUT_DETECTED_MAPS:
        assert controlnet_patched(info["host_log"]) == [EMBEDDING[webui.host], KEYPOINTS], info["host_log"][-2000:]
        return None
    return _keypoints_map(images)


def _same_map(found: np.ndarray | None, expected: np.ndarray | None) -> bool:
    return found is None and expected is None or found is not None and expected is not None and same(found, expected)


def _create(webui: WebUI, name: str) -> str:
    r = webui.post("/hyperlora/v1/identities", {"name": name, "images": [encode(FACE)]})
    assert r.status_code == 200, r.text
    return r.json()["hash"]


def _check_instantid(webui: WebUI, plain: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Both units ran: the keypoints map came back, the image changed; the embedding unit is the face's."""
    iid, info = _run(webui, PLAIN, _units(webui))
    kps = _units_ran(webui, (iid, info))
    assert not same(iid[0], plain), "the InstantID units did not change the image"
    [ip_only, *_], _ = _run(webui, PLAIN, _units(webui, keypoints=False))
    [ip_other, *_], _ = _run(webui, PLAIN, _units(webui, OTHER_FACE, keypoints=False))
    assert not same(ip_only, plain), "the InstantID IP-Adapter unit did not change the image"
    assert not same(ip_only, ip_other), "the IP-Adapter unit gave the same image for another face"
    assert not same(ip_only, iid[0]), "the keypoints ControlNet unit changed nothing beside the IP-Adapter"
    return iid, kps


@pytest.fixture(scope="module")
def first_process(iid_webui) -> dict:
    """What the first process gives before any restart: the identity's hash, the plain and tagged
    images, InstantID alone (both units, checked to have run) with its keypoints map, and both."""
    webui = iid_webui
    first_hash = _create(webui, NAME)
    [plain], _ = _run(webui, PLAIN)
    [tagged], info = _run(webui, PLAIN + TAG)
    assert f"{NAME} (" in info["extra_generation_params"].get("HyperLoRA", ""), info["extra_generation_params"]
    iid, kps = _check_instantid(webui, plain)
    both, info = _run(webui, PLAIN + TAG, _units(webui))
    assert f"{NAME} (" in info["extra_generation_params"].get("HyperLoRA", ""), info["extra_generation_params"]
    return {"plain": plain, "tagged": tagged, "iid": iid, "kps": kps, "both": both, "both_info": info,
            "hash": first_hash}


def test_hyperlora_then_instantid_then_hyperlora(iid_webui, first_process):
    """Identity + tag first; then InstantID runs (both units) and with the tag; then HyperLoRA is unchanged."""
    webui, first = iid_webui, first_process
    plain, tagged, iid, kps, both = (first[k] for k in ("plain", "tagged", "iid", "kps", "both"))
    assert not same(tagged, plain)
    if kps is not None:
        print(f"\n[e2e] {webui.host}: InstantID keypoints map {kps.shape}, pixels per dot colour {_dots(kps)}")
    assert _same_map(_units_ran(webui, (both, first["both_info"])), kps), "the tag changed InstantID's keypoints map"
    assert not same(both[0], iid[0]), "the tag did not apply beside InstantID"
    assert not same(both[0], tagged), "InstantID did not apply beside the tag"

    # HyperLoRA after InstantID: the same photo gives the same identity; the tag the same pixels.
    assert _create(webui, NAME + "_again") == first["hash"], "InstantID's face models changed HyperLoRA's identity"
    assert same(_run(webui, PLAIN + TAG)[0][0], tagged), "the tag gives other pixels after InstantID ran"
    iid_again, _ = _run(webui, PLAIN, _units(webui))
    assert same(iid_again[0], iid[0]), "InstantID alone no longer gives the pixels it gave before the tag"
    assert same(_run(webui, PLAIN)[0][0], plain), "the plain image changed"


def test_instantid_first_after_a_restart(iid_webui, first_process):
    """A fresh process whose first face work is InstantID's; then HyperLoRA: same identity, same pixels."""
    webui, first = iid_webui, {**first_process, "iid": first_process["iid"][0], "both": first_process["both"][0]}
    webui.restart()
    iid, info = _run(webui, PLAIN, _units(webui))  # the process's first use of antelopev2
    assert _same_map(_units_ran(webui, (iid, info)), first["kps"])
    assert not same(iid[0], first["plain"]), "the InstantID units did not change the image"
    print(f"\n[e2e] {webui.host}: InstantID after a restart equals the first process's: {same(iid[0], first['iid'])}")
    assert same(iid[0], first["iid"]), "InstantID gave other pixels in a fresh process"

    assert _create(webui, NAME + "_after_iid") == first["hash"], "HyperLoRA after InstantID made another identity"
    [tagged], _ = _run(webui, PLAIN + TAG)
    assert same(tagged, first["tagged"]), "the tag gives other pixels when InstantID ran first"
    both, _ = _run(webui, PLAIN + TAG, _units(webui))
    assert same(both[0], first["both"]), "InstantID + tag gives other pixels when InstantID ran first"
    iid_again, _ = _run(webui, PLAIN, _units(webui))
    assert same(iid_again[0], iid[0]), "InstantID alone changed after HyperLoRA ran"
