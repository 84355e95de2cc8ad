"""Same prompt, same seed, same pixels: a tag's LoRA does not depend on the host's autocast or on
what ran before (A1111 activates extra networks inside ``devices.autocast()``: CPU bf16 autocast
with the fp8 storage these tests use).

The LoRA files are saved first, outside any generation; then every fresh WebUI process meets the
identities for the first time through a tag inside a generation. A concept-slider prompt (one
identity at +w, the other at -w) checks both signs at once.
"""

from __future__ import annotations

import time

from e2e_helpers import PLAIN, TIMINGS, VARIANT, encode, generate, same
from face_pack import face_image

SLIDER_TAGS = f"{PLAIN} <hyperlora:carol:0.7><hyperlora:dave:-0.7>"
SLIDER_FILES = f"{PLAIN} <lora:carol_file:0.7><lora:dave_file:-0.7>"


def test_first_use_by_tag_equals_the_saved_file_and_a_restart(webui):
    for name, feature, seed in (("carol", (200, 120, 60), 11), ("dave", (90, 160, 220), 12)):
        r = webui.post("/hyperlora/v1/identities", {"name": name, "variant": VARIANT,
                                                    "images": [encode(face_image(feature=feature, seed=seed))]})
        assert r.status_code == 200, r.text
        r = webui.post(f"/hyperlora/v1/identities/{name}/lora", {"file_name": f"{name}_file"})
        assert r.status_code == 200, r.text
    plain, _ = generate(webui, PLAIN)
    by_files, _ = generate(webui, SLIDER_FILES)
    assert not same(plain, by_files)

    t0 = time.monotonic()
    webui.restart()
    TIMINGS[f"{webui.host} restart"] = [time.monotonic() - t0]
    by_tags, info = generate(webui, SLIDER_TAGS)  # the fresh process's first HyperLoRA use
    applied = info["extra_generation_params"]["HyperLoRA"]
    assert "carol (" in applied and ": 0.7," in applied and "dave (" in applied and ": -0.7," in applied, applied
    assert same(by_tags, by_files), "the tag's LoRA differs from the same identities' saved LoRA files"
    assert same(generate(webui, PLAIN)[0], plain), "the slider pair did not restore the weights exactly"

    webui.restart()
    again, _ = generate(webui, SLIDER_TAGS)
    assert same(again, by_tags), "the same prompt gave other pixels after a restart"
    assert same(generate(webui, SLIDER_FILES)[0], by_files)
