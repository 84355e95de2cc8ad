"""Headless Chromium on a running WebUI, for the e2e browser tests (test_browser, test_first_use_download).

Needs the Python ``playwright`` package and a Chromium binary ($HYPERLORA_E2E_CHROMIUM, default
/usr/bin/chromium); ``playwright install`` is not needed. Screenshots go to $HYPERLORA_E2E_SCREENSHOTS
(default: the test's tmp folder).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

CHROMIUM = os.environ.get("HYPERLORA_E2E_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EID = "#hyperlora_txt2img"  # the accordion in the txt2img tab
LONG = 300_000  # ms: first model load on a busy 2-core machine
SHORT = 60_000


def field(page, elem_id: str):
    """The text input of a gradio Textbox (``input`` or ``textarea`` depending on version and lines)."""
    return page.locator(f"{elem_id} textarea, {elem_id} input[type=text], {elem_id} input:not([type])").first


def status(page, elem_id: str):
    return page.locator(elem_id).first  # gradio 3 puts an HTML component's id on two nested divs


def tab_button(page, container: str, label: str):
    """A tab's button by its label, in any case (Forge says "Img2img" where A1111 says "img2img")."""
    label_re = re.compile(rf"^\s*{re.escape(label)}\s*$", re.IGNORECASE)
    return page.locator(f"{container} > .tab-nav > button").filter(has_text=label_re)


def panel_is_open(page, eid: str = EID) -> bool:
    """Whether the accordion ``eid`` shows its content (its tabs are visible; a closed gradio accordion hides
    them with display: none; the tab that holds it must be shown)."""
    return page.locator(f"{eid}_tabs").first.is_visible()


def open_panel(page, eid: str = EID) -> None:
    """Show the accordion ``eid`` (``#hyperlora_txt2img``: the txt2img tab, its Generation page) and open it unless
    it is open already (a click on its label toggles it)."""
    label = page.locator(f"{eid} .label-wrap").first
    tab = eid.rsplit("_", 1)[-1]
    if not label.is_visible():
        tab_button(page, "#tabs", tab).click()
    if not label.is_visible():  # an Extra Networks page is shown instead of the generation settings
        tab_button(page, f"#{tab}_extra_tabs", "Generation").click()
    if not panel_is_open(page, eid):
        label.click()
    expect(page.locator(f"{eid}_tabs").first).to_be_visible()


def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("HYPERLORA_E2E_SCREENSHOTS") or tmp_path_factory.mktemp("screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def webui_page(url: str, viewport: dict | None = None, open_txt2img_panel: bool = True) -> Iterator:
    """A page on the WebUI, with the HyperLoRA accordion (txt2img) opened unless ``open_txt2img_panel`` is false.
    Fails when any of the host's own ``/file=`` scripts is refused: without them the page only half works."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport=viewport or {"width": 1400, "height": 1600})
        pg.set_default_timeout(SHORT)
        refused: list[str] = []
        pg.on("response", lambda r: refused.append(f"{r.status} {r.url}") if "/file=" in r.url and r.status >= 400
              else None)
        pg.goto(url, timeout=LONG)
        pg.wait_for_selector(f"{EID} .label-wrap", timeout=LONG)
        assert not refused, refused[:5]
        if open_txt2img_panel:
            open_panel(pg)
        try:
            yield pg
        finally:
            browser.close()
