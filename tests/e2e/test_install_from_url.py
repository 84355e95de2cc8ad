"""Browser check: install this repository the way users do, through the Extensions tab.

The WebUI starts *without* the extension (the harness links nothing), runs as under webui.sh
(``SD_WEBUI_RESTART``, so the button reads "Apply and restart UI"), and the test: opens Extensions ->
Install from URL, installs a clean clone of this repository's HEAD from a ``file://`` URL (the host runs
``git clone`` and then our ``install.py``), presses "Apply and restart UI" in the Installed tab (the host
exits; the harness starts it again as webui.sh would; the page reloads itself), then finds the accordion,
the Extra Networks page and ``/hyperlora/v1/models``. Only committed files are installed.

Needs playwright and Chromium as test_browser.py does; screenshots go to $HYPERLORA_E2E_SCREENSHOTS.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from browser_helpers import ARGS, CHROMIUM
from e2e_helpers import VARIANT
from webui_server import HOSTS, REPO, WebUI, require

NAME = "sd-webui-hyperlora"
OUR_SCRIPTS = tuple(f"Error loading script: {p.name}" for p in (Path(__file__).parents[2] / "scripts").glob("*.py"))
ALARMING = ("Error running install.py", "sd-webui-hyperlora requirement", "pip install", *OUR_SCRIPTS)


def _alarms(log: str) -> list[str]:
    """Lines of ``log`` that would alarm a user about this extension: install.py failing or installing
    something, one of our scripts failing to load, or any traceback that passes through our files (another
    extension's failure is not ours: Regional Prompter does not load on Forge Classic)."""
    found = [line for line in log.splitlines() if any(a in line for a in ALARMING)]
    blocks = re.split(r"\n(?=\S)", log)  # a traceback's frames are indented below its first line
    found += [b[:600] for b in blocks if "Traceback" in b and "hyperlora" in b.lower()]
    return found


@pytest.fixture(scope="module", params=list(HOSTS))
def bare_webui(request, tmp_path_factory, e2e_models):
    """A WebUI without this extension, restartable from its UI."""
    host = request.param
    require(host)
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    server = WebUI(host, tmp_path_factory.mktemp(f"{host}-bare-data"), e2e_models(host), install_self=False,
                   restartable=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _button(page, text: str):
    """The visible button whose whole label is ``text``."""
    return page.locator("button:visible", has_text=re.compile(rf"^\s*{re.escape(text)}\s*$")).first


def test_install_from_url_and_restart(bare_webui, tmp_path):
    from playwright.sync_api import sync_playwright

    webui = bare_webui
    assert webui.get("/hyperlora/v1/models").status_code == 404, "the extension is there before installing it"
    source = tmp_path / NAME
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(source)], check=True)
    url = source.as_uri()
    shots = Path(os.environ.get("HYPERLORA_E2E_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        js_errors: list[str] = []
        page.on("pageerror", lambda exc: js_errors.append(str(exc)))
        page.on("console", lambda msg: js_errors.append(msg.text) if msg.type == "error" else None)
        try:
            page.goto(webui.url, timeout=300_000)
            page.wait_for_selector("#tab_extensions", state="attached", timeout=300_000)
            _button(page, "Extensions").click()
            _button(page, "Install from URL").click()
            page.get_by_label("URL for extension's git repository").fill(url)
            _button(page, "Install").click()
            # gradio 3 puts an HTML component's id on two nested elements: take the first match throughout
            page.locator("#extension_install_result", has_text="Installed into").first.wait_for(timeout=300_000)
            assert (webui.data_dir / "extensions" / NAME / "install.py").is_file()
            assert not _alarms(webui.log_text()), _alarms(webui.log_text())
            page.screenshot(path=str(shots / f"install-url-{webui.host}.png"))

            _button(page, "Installed").click()
            page.locator("#extensions", has_text=NAME).first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / f"install-installed-{webui.host}.png"))
            _button(page, "Apply and restart UI").click()
            # the button's JS (extensions_apply -> restart_reload) replaces the page with "Reloading..."
            page.locator("h1", has_text="Reloading").first.wait_for(state="attached", timeout=60_000)
            webui.wait_for_ui_restart(timeout=120)
            # The page reloads itself once the server answers again (the host's restart_reload()).
            page.wait_for_selector("#hyperlora_txt2img .label-wrap", timeout=300_000)
            page.click("#hyperlora_txt2img .label-wrap")
            page.locator("#hyperlora_txt2img_create").first.wait_for(timeout=60_000)
            page.locator("#hyperlora_txt2img").first.screenshot(path=str(shots / f"install-accordion-{webui.host}.png"))
            page.locator("#txt2img_extra_tabs button", has_text=re.compile(r"^\s*HyperLoRA\s*$")).first.click()
            page.locator("#txt2img_hyperlora").first.wait_for(timeout=60_000)
            page.screenshot(path=str(shots / f"install-extra-networks-{webui.host}.png"))
        except Exception as exc:
            exc.add_note(f"browser errors: {js_errors}")
            page.screenshot(path=str(shots / f"install-failed-{webui.host}.png"))  # what the user would see
            raise
        browser.close()

    models = webui.get("/hyperlora/v1/models")
    assert models.status_code == 200, models.text
    assert VARIANT in models.json()["variants"], models.text
    assert not _alarms(webui.log_text()), _alarms(webui.log_text())
    assert "Failed reading extension data" not in webui.log_text(), "the installed clone has no git origin"
