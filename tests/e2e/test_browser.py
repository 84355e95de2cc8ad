"""Browser check: open the WebUI in headless Chromium, create an identity through the accordion,
insert its tag into the prompt, and save a screenshot.

Needs the Python ``playwright`` package and a Chromium binary ($HYPERLORA_E2E_CHROMIUM, default
/usr/bin/chromium); ``playwright install`` is not needed. Screenshots go to
$HYPERLORA_E2E_SCREENSHOTS (default: the test's tmp folder).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from face_pack import face_image
from PIL import Image

CHROMIUM = os.environ.get("HYPERLORA_E2E_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _wait_for(check, seconds: float, page) -> None:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        page.wait_for_timeout(250)


def test_accordion_creates_identity_and_inserts_tag(webui, tmp_path):
    """Create (with a photo that has no face), keep Create's message, create a second identity,
    pick the first in the list, insert its tag, save it as a LoRA file, screenshot."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    photo, sky = tmp_path / "dana.png", tmp_path / "sky.png"
    face_image(feature=(200, 120, 100), seed=9).save(photo)
    Image.new("RGB", (200, 200), (20, 40, 160)).save(sky)
    shots = Path(os.environ.get("HYPERLORA_E2E_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    eid = "#hyperlora_txt2img"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(webui.url, timeout=300_000)
        page.wait_for_selector(f"{eid} .label-wrap", timeout=300_000)
        page.click(f"{eid} .label-wrap")
        status = page.locator(f"{eid}_status").first  # gradio 3 puts the id on two nested divs
        name = page.locator(f"{eid}_name textarea, {eid}_name input").first

        page.locator(f"{eid}_files input[type=file]").first.set_input_files([str(photo), str(sky)])
        name.fill("dana")
        page.click(f"{eid}_create")
        _wait_for(lambda: "Created" in status.inner_text(), 300, page)
        page.wait_for_timeout(2000)  # let any follow-up event land: it must not replace Create's message
        text = status.inner_text()
        assert "Created 'dana'" in text and "sky.png: no face found" in text, text

        name.fill("erin")
        page.click(f"{eid}_create")
        _wait_for(lambda: "Created 'erin'" in status.inner_text(), 120, page)
        assert "Created 'erin'" in status.inner_text(), status.inner_text()

        picker = page.locator(f"{eid}_identity input").first
        picker.click()
        picker.fill("dana")
        picker.press("Enter")
        _wait_for(lambda: status.inner_text().startswith("dana:"), 60, page)
        assert status.inner_text().startswith("dana: e2e_sdxl, hash"), status.inner_text()

        page.click(f"{eid}_insert")
        prompt = page.locator("#txt2img_prompt textarea").first
        _wait_for(lambda: "<hyperlora:dana:" in prompt.input_value(), 30, page)
        assert "<hyperlora:dana:0.85>" in prompt.input_value()

        page.locator(f"{eid}_lora_name textarea, {eid}_lora_name input").first.fill("dana_ui")
        page.click(f"{eid}_save")
        _wait_for(lambda: "Saved" in status.inner_text(), 120, page)
        assert "<lora:dana_ui:0.85>" in status.inner_text(), status.inner_text()
        page.locator(eid).first.screenshot(path=str(shots / f"accordion-{webui.host}.png"))
        page.screenshot(path=str(shots / f"page-{webui.host}.png"), full_page=False)
        browser.close()
    listed = {i["name"] for i in webui.get("/hyperlora/v1/identities").json()["identities"]}
    assert {"dana", "erin"} <= listed
    assert (webui.lora_dir / "dana_ui.safetensors").is_file()
    assert "dana_ui" in {x["name"] for x in webui.get("/sdapi/v1/loras").json()}
