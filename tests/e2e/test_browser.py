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

CHROMIUM = os.environ.get("HYPERLORA_E2E_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_accordion_creates_identity_and_inserts_tag(webui, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    photo = tmp_path / "dana.png"
    face_image(feature=(200, 120, 100), seed=9).save(photo)
    shots = Path(os.environ.get("HYPERLORA_E2E_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    eid = "#hyperlora_txt2img"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(webui.url, timeout=300_000)
        page.wait_for_selector(f"{eid} .label-wrap", timeout=300_000)
        page.click(f"{eid} .label-wrap")
        page.set_input_files(f"{eid}_files input[type=file]", [str(photo)])
        page.fill(f"{eid}_name textarea, {eid}_name input", "dana")
        page.click(f"{eid}_create")
        status = page.locator(f"{eid}_status")
        deadline = time.monotonic() + 300
        while "Created" not in status.inner_text() and time.monotonic() < deadline:
            page.wait_for_timeout(500)
        assert "Created 'dana'" in status.inner_text(), status.inner_text()
        page.click(f"{eid}_insert")
        prompt = page.locator("#txt2img_prompt textarea")
        deadline = time.monotonic() + 30
        while "<hyperlora:dana:" not in prompt.input_value() and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert "<hyperlora:dana:0.85>" in prompt.input_value()
        page.locator(f"{eid}").screenshot(path=str(shots / f"accordion-{webui.host}.png"))
        page.screenshot(path=str(shots / f"page-{webui.host}.png"), full_page=False)
        browser.close()
    listed = {i["name"] for i in webui.get("/hyperlora/v1/identities").json()["identities"]}
    assert "dana" in listed
