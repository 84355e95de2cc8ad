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
from e2e_hosts import LDM_PATCHED_HOSTS, bf16_unet
from face_pack import BACKGROUND, face_image
from PIL import Image, ImageOps
from regional_prompter import distance, regional, require_regional_prompter, unet_regions

WEBUI_SETTINGS = {"ad_bbox_sortby": "Position (left to right)"}
# ldm_patched hosts keep a LoRA-patched UNet's backups for the WebUI's lifetime: with --always-cpu's fp32 UNet,
# ADetailer's passes took reForge past 22 GB (killed in a 24 GB rig). A bf16 UNet halves both (native bf16 CPUs).
WEBUI_ARGS = bf16_unet(LDM_PATCHED_HOSTS)
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


def faces(webui, picture: Image.Image, ad_prompt: str, txt2img: str | None = None) -> tuple[np.ndarray, str]:
    """ADetailer's face passes on ``picture``, one per face; (image, infotext). By default an img2img with
    ADetailer only ("skip img2img"); with ``txt2img``, a txt2img of that prompt whose picture the e2e picture
    script (``extensions/hyperlora-e2e-picture``) replaces by ``picture`` before ADetailer looks for faces."""
    unit = {"ad_model": "mediapipe_face_short", "ad_prompt": ad_prompt, "ad_denoising_strength": 1.0,
            "ad_inpaint_only_masked": True, "ad_use_inpaint_width_height": True, "ad_inpaint_width": 256,
            "ad_inpaint_height": 256, "ad_use_steps": True, "ad_steps": 2}
    scripts = {"ADetailer": {"args": [True, True, unit]}}
    if txt2img is None:
        image, info = generate(webui, TRIGGER + "two people", "img2img", init_images=[encode(picture)],
                               width=WIDTH, height=HEIGHT, denoising_strength=0.5, alwayson_scripts=scripts)
    else:
        path = webui.data_dir / "two_heads.png"
        picture.save(path)
        image, info = generate(webui, txt2img, width=WIDTH, height=HEIGHT,
                               alwayson_scripts=scripts | {"HyperLoRA e2e picture": {"args": [str(path)]}})
    return image, info["infotexts"][0]


def per_face(first: str, second: str) -> str:
    return f"{TRIGGER}<hyperlora:{first}:0.85> {FACE_TEXT} [SEP] {TRIGGER}<hyperlora:{second}:0.85> {FACE_TEXT}"


def each_face_gets_its_identity(webui, picture: Image.Image, txt2img: str | None = None) -> str:
    """ADetailer ``[SEP]`` with tp_alice then tp_bob: each half of the picture equals, pixel for pixel, the
    same request with that half's identity on both faces, the halves differ from those of the other
    identity, and the next request without identities equals the one before (exact restore). Returns
    the infotext of the ``[SEP]`` picture, after checking its inner passes and per-face likeness."""
    start = webui.log_mark()
    plain, _ = faces(webui, picture, f"{TRIGGER}{FACE_TEXT}", txt2img)
    assert not same(plain, np.asarray(picture)), "ADetailer found no face (the picture came back unchanged)"
    both, info = faces(webui, picture, per_face("tp_alice", "tp_bob"), txt2img)
    all_alice, _ = faces(webui, picture, per_face("tp_alice", "tp_alice"), txt2img)
    all_bob, _ = faces(webui, picture, per_face("tp_bob", "tp_bob"), txt2img)
    left, right = slice(0, WIDTH // 2), slice(WIDTH // 2, WIDTH)
    for name, image in (("[SEP]", both), ("alice on both", all_alice), ("bob on both", all_bob)):
        for half in (left, right):
            assert not same(image[:, half], plain[:, half]), f"{name}: a face pass applied no identity"
    diff_left = int((both[:, left] != all_alice[:, left]).any(axis=2).sum())
    diff_right = int((both[:, right] != all_bob[:, right]).any(axis=2).sum())
    kind = "img2img" if txt2img is None else "txt2img"
    print(f"\n[e2e] {webui.host} {kind}: [SEP] vs one identity on both faces: {diff_left} px differ on the left "
          f"(alice), {diff_right} px on the right (bob)")
    assert diff_left == 0, "the left face is not the one alice gives"
    assert diff_right == 0, "the right face is not the one bob gives (it depends on the first pass?)"
    assert not same(both[:, left], all_bob[:, left]) and not same(both[:, right], all_alice[:, right])
    detections = webui.log_since(start).count("mediapipe: 2 detected")
    assert detections >= 4, f"ADetailer found both faces {detections} times in 4 requests"

    inner = re.search(r"HyperLoRA inner passes: \"?([^\n\"]+)", info)
    assert inner, info
    assert re.fullmatch(r"tp_alice \([0-9a-f]+\): 0\.85, \S+; tp_bob \([0-9a-f]+\): 0\.85, \S+", inner.group(1)), \
        inner.group(1)
    likeness = re.search(r"HyperLoRA likeness: \"?([^\n\"]+)", info)
    assert likeness, info
    print(f"[e2e] {webui.host} {kind}: HyperLoRA likeness: {likeness.group(1)}")
    score = r"(-?\d\.\d\d \(face \d+\)|no face)"
    found = re.fullmatch(rf"(tp_\w+) {score}, (tp_\w+) {score}", likeness.group(1))
    assert found and {found.group(1), found.group(3)} == {"tp_alice", "tp_bob"}, likeness.group(1)
    faces_used = re.findall(r"\(face (\d+)\)", likeness.group(1))
    assert len(faces_used) == len(set(faces_used)), "two identities were scored on the same face"

    again, _ = faces(webui, picture, f"{TRIGGER}{FACE_TEXT}", txt2img)
    assert same(again, plain), "the weights did not come back exactly after the passes"
    return info


def test_adetailer_sep_gives_each_face_its_identity(webui, people):
    each_face_gets_its_identity(webui, people)


def test_adetailer_sep_after_a_txt2img_with_an_identity_of_its_own(webui, people):
    """txt2img: the generation applies an identity of its own (``tp_bob`` for the whole picture), then
    ADetailer's passes one identity per face. The picture ADetailer repaints stands in for what the
    txt2img drew (random SDXL weights draw no faces): the generation, its networks and its infotext are
    the host's own. The infotext keeps both: the generation's identity and the passes'."""
    outer = f"{TRIGGER}<hyperlora:tp_bob:0.85> two people"
    info = each_face_gets_its_identity(webui, people, txt2img=outer)
    applied = re.search(r"HyperLoRA: \"?([^\n\"]+)", info)
    assert applied and applied.group(1).startswith("tp_bob ("), info


def test_regional_prompter_gives_each_region_its_saved_lora(webui, people):
    """The Save as LoRA route: each identity saved as a LoRA file, ``<lora:NAME:w>`` per region, and Regional
    Prompter sets each region's LoRA weights (its debug output) in latent mode. The random SDXL VAE (its
    attention block) spreads any change in the latent over the whole picture, so the pixels of one half
    cannot show which region got which LoRA; the region weights can, and the image must differ from the
    same identity in both regions either way."""
    require_regional_prompter(webui)
    for name in ("tp_alice", "tp_bob"):
        r = webui.post(f"/hyperlora/v1/identities/{name}/lora", {"file_name": f"{name}_lora", "overwrite": True})
        assert r.status_code == 200, r.text

    def prompt(first: str | None, second: str | None) -> str:
        lora = {None: ""} | {n: f" <lora:{n}_lora:0.8>" for n in ("tp_alice", "tp_bob")}
        return f"{TRIGGER}photo of a person{lora[first]} ADDCOL {TRIGGER}photo of a person{lora[second]}"

    both, info, log = regional(webui, prompt("tp_alice", "tp_bob"))
    assert "RP Active: True" in info, info
    regions = unet_regions(log)
    key = {name: next(k for k in regions[0] if name in k) for name in ("tp_alice", "tp_bob")}  # name or file
    print(f"\n[e2e] {webui.host}: Regional Prompter U-Net LoRA weights per region: {regions}")
    assert [(r[key["tp_alice"]], r[key["tp_bob"]]) for r in regions[:2]] == [(0.8, 0), (0, 0.8)], regions
    all_alice, _, _ = regional(webui, prompt("tp_alice", "tp_alice"))
    all_bob, _, _ = regional(webui, prompt("tp_bob", "tp_bob"))
    none, _, _ = regional(webui, prompt(None, None))
    for other, name in ((all_alice, "alice in both regions"), (all_bob, "bob in both regions"), (none, "no LoRA")):
        assert not same(both, other), f"the picture equals the one with {name}"
    print(f"[e2e] {webui.host}: mean |difference| to alice / bob in both regions / no LoRA: "
          f"{distance(both, all_alice):.1f} / {distance(both, all_bob):.1f} / {distance(both, none):.1f}")


def test_hyperlora_tags_are_not_regional(webui, people):
    """What docs/workflows.md says of ``<hyperlora:...>`` tags inside Regional Prompter's regions: it reads only
    ``<lora:...>`` tags there, so it assigns ours to no region. A1111: our network is among the loaded LoRAs,
    so Regional Prompter gives it weight 0 in every region (and leaves the tag's weight in its last list, the
    pass outside the regions); Forge: it does not know our UNet patch at all, which stays at the tag's weight.
    The image changes either way (the random VAE spreads any change over the whole picture, so where the
    identity acts is not visible in pixels: Regional Prompter's region weights are)."""
    require_regional_prompter(webui)
    region = f"{TRIGGER}photo of a person"
    none, _, _ = regional(webui, f"{region} ADDCOL {region}")
    tagged, info, log = regional(webui, f"{region} <hyperlora:tp_alice:0.8> ADDCOL {region}")
    assert "HyperLoRA: " in info, info  # the tag was resolved and applied
    assert not same(tagged, none)
    regions = unet_regions(log)
    print(f"\n[e2e] {webui.host}: a <hyperlora> tag in Regional Prompter's left region; its region weights: {regions}")
    ours = [{k: v for k, v in r.items() if "tp_alice" in k} for r in regions]
    if webui.host == "a1111":
        assert all(len(r) == 1 for r in ours) and [next(iter(r.values())) for r in ours[:2]] == [0, 0], regions
    else:
        assert not any(ours), regions
