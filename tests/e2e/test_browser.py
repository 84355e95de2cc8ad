"""Browser checks of the HyperLoRA panel, the card editor and javascript/hyperlora.js in headless Chromium.

One WebUI and one page per host, tests in file order (the later ones use identities the first
creates): create through the *Create* tab with a face-less and a flagged photo (messages stay),
hover help on every control, insert / save as LoRA / mix through *Use & manage*, manage an identity
from its Extra Networks card editor (rename, Save as LoRA, delete), ``<hyperlora:an`` autocomplete
and Ctrl+Up/Down in the txt2img, img2img and hires-fix prompts, the panel in the narrow img2img column.
Every wait is on a condition (Playwright ``expect``), never a fixed sleep. Chromium: see browser_helpers.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_helpers import EID, LONG, expect, field, screenshots, status, tab_button, webui_page
from e2e_helpers import VARIANT, encode
from face_pack import face_image
from PIL import Image

from hyperlora_ext.app.panel_help import HELP

UI_SOURCE = Path(__file__).resolve().parents[2] / "hyperlora_ext" / "webui" / "ui.py"
EDITOR = "#txt2img_hyperlora_edit_user_metadata"
WEBUI_SETTINGS = {"hires_fix_show_prompts": True}  # conftest: show the hires-fix prompt boxes


def api_create(webui, name: str, pattern: int, seeds=(1,)) -> None:
    images = [encode(face_image(pattern=pattern, seed=s)) for s in seeds]
    r = webui.post("/hyperlora/v1/identities", {"name": name, "images": images, "variant": VARIANT})
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return screenshots(tmp_path_factory)


@pytest.fixture(scope="module")
def page(webui):
    with webui_page(webui.url) as pg:
        yield pg


def test_create_with_a_flagged_and_a_faceless_photo(webui, page, shots, tmp_path):
    """Create tab: two photos of dana, one of someone else, one without a face. The status names the
    skipped photo and flags the stranger, the gallery captions flag its face, and the message stays
    when the other tab is used."""
    files = []
    for i, img in enumerate([face_image(pattern=80, seed=1), face_image(pattern=80, seed=2),
                             face_image(pattern=-80, seed=4), Image.new("RGB", (200, 200), (20, 40, 160))]):
        files.append(tmp_path / ("sky.png" if i == 3 else f"dana{i}.png"))
        img.save(files[-1])
    page.locator(f"{EID}_files input[type=file]").first.set_input_files([str(f) for f in files])
    field(page, f"{EID}_name").fill("dana")
    page.click(f"{EID}_create")
    created = status(page, f"{EID}_status")
    expect(created).to_contain_text("Created 'dana'", timeout=LONG)
    text = created.inner_text()
    assert "skipped: sky.png: no face found" in text and "/tmp" not in text, text
    assert "dana2.png" in text and "looks like someone else" in text, text
    expect(page.locator(f"{EID}_crops").first).to_contain_text("(flagged)")
    page.locator(EID).first.screenshot(path=str(shots / f"panel-create-{webui.host}.png"))

    tab_button(page, f"{EID}_tabs", "Use & manage").click()  # its select event re-reads the identity list
    expect(page.locator(f"{EID}_identity input").first).to_have_value("dana")
    tab_button(page, f"{EID}_tabs", "Create").click()
    assert status(page, f"{EID}_status").inner_text() == text  # still there after an action elsewhere


def test_every_control_has_hover_help(page):
    """Every ``tip("KEY")`` control of each tab carries its help text as its title once the tab is shown
    (gradio 4 mounts a tab's controls only then)."""
    source = UI_SOURCE.read_text()
    use_at = source.index('gr.Tab("Use & manage"')
    tabs = {"Create": re.findall(r"""tip\("(\w+)"\)""", source[:use_at]),
            "Use & manage": re.findall(r"""tip\("(\w+)"\)""", source[use_at:])}
    assert len(tabs["Create"]) > 5 and len(tabs["Use & manage"]) > 15, tabs
    for label, keys in tabs.items():
        tab_button(page, f"{EID}_tabs", label).click()
        for key in keys:
            expect(page.locator(f"{EID}_{key}").first).to_have_attribute("title", HELP[key])
    tab_button(page, f"{EID}_tabs", "Create").click()


def test_use_tab_inserts_saves_and_mixes(webui, page, shots):
    api_create(webui, "erin", -80, seeds=(4, 5))
    tab_button(page, f"{EID}_tabs", "Use & manage").click()
    picker = page.locator(f"{EID}_identity input").first
    page.click(f"{EID}_refresh")
    picker.click()
    picker.fill("erin")  # Create selected dana: choose another one
    picker.press("Enter")
    manage = status(page, f"{EID}_manage_status")
    expect(manage).to_contain_text("erin: e2e_sdxl, hash")

    prompt = page.locator("#txt2img_prompt textarea").first
    prompt.fill("photo")
    page.click(f"{EID}_insert")
    expect(prompt).to_have_value("photo <hyperlora:erin:0.85>")

    field(page, f"{EID}_lora_name").fill("erin_ui")
    page.click(f"{EID}_save")
    expect(manage).to_contain_text("<lora:erin_ui:0.85>", timeout=LONG)
    assert (webui.lora_dir / "erin_ui.safetensors").is_file()

    field(page, f"{EID}_expression").fill("0.5*dana + 0.5*erin")
    field(page, f"{EID}_mix_name").fill("daer")
    page.click(f"{EID}_mix")
    expect(manage).to_contain_text("Created mix 'daer' = 0.5*dana + 0.5*erin")
    expect(picker).to_have_value("daer")
    parents = webui.get("/hyperlora/v1/identities").json()["identities"]
    assert {"dana", "erin", "daer"} <= {i["name"] for i in parents}
    page.locator(EID).first.screenshot(path=str(shots / f"panel-use-{webui.host}.png"))


def test_card_editor_renames_saves_and_deletes(webui, page, shots):
    api_create(webui, "fern", 80, seeds=(3,))
    tab_button(page, "#txt2img_extra_tabs", "HyperLoRA").click()
    # what the page's refresh icon does: click the host's hidden refresh button
    page.evaluate("document.getElementById('txt2img_hyperlora_extra_refresh_internal')"
                  ".dispatchEvent(new Event('click'))")
    card = page.locator('#txt2img_hyperlora_cards .card[data-name="fern"]')
    expect(card).to_be_visible(timeout=LONG)
    card.hover()
    card.locator(".edit-button").click()
    editor = page.locator(EDITOR)
    expect(editor).to_be_visible()
    expect(editor).to_contain_text("Identity hash:")
    expect(field(page, f"{EDITOR}_new_name")).to_have_value("fern")
    done = status(page, f"{EDITOR}_hyperlora_status")

    field(page, f"{EDITOR}_lora_name").fill("fern_card")
    page.click(f"{EDITOR}_save")
    expect(done).to_contain_text("<lora:fern_card:0.85>", timeout=LONG)
    assert (webui.lora_dir / "fern_card.safetensors").is_file()

    field(page, f"{EDITOR}_new_name").fill("fern2")
    page.click(f"{EDITOR}_rename")
    expect(done).to_contain_text("Renamed 'fern' to 'fern2'")
    expect(page.locator('#txt2img_hyperlora_cards .card[data-name="fern2"]')).to_have_count(1)
    expect(page.locator('#txt2img_hyperlora_cards .card[data-name="fern"]')).to_have_count(0)
    expect(editor.locator(".extra-network-name").first).to_contain_text("fern2")
    page.locator(".global-popup-inner").first.screenshot(path=str(shots / f"card-editor-{webui.host}.png"))

    page.click(f"{EDITOR}_delete")
    expect(done).to_contain_text("Tick 'confirm' to delete 'fern2'")
    page.locator(f"{EDITOR}_confirm input[type=checkbox]").first.check()
    page.click(f"{EDITOR}_delete")
    expect(done).to_contain_text("Deleted 'fern2'")
    expect(page.locator('#txt2img_hyperlora_cards .card[data-name="fern2"]')).to_have_count(0)
    assert webui.get("/hyperlora/v1/identities/fern2").status_code == 404
    editor.get_by_role("button", name="Cancel").click()
    expect(editor).to_be_hidden()


def _type_tag_and_accept(page, prompt, accept_with_click: bool) -> None:
    prompt.fill("")
    prompt.click()
    page.keyboard.type("photo of <hyperlora:an")
    suggestions = page.locator("#hyperlora_suggestions")
    expect(suggestions).to_be_visible()
    first = suggestions.locator(".hyperlora-suggestion").first
    expect(first).to_have_text("anika")  # names that start with "an" come before names that contain it (dana)
    if accept_with_click:
        first.click()
    else:
        page.keyboard.press("Enter")
    expect(prompt).to_have_value("photo of <hyperlora:anika:0.85>")
    expect(suggestions).to_be_hidden()


def test_autocomplete_and_ctrl_arrows_in_the_prompts(webui, page):
    api_create(webui, "anika", 80, seeds=(5,))  # not alice: test_webui makes her
    tab_button(page, "#txt2img_extra_tabs", "Generation").click()
    prompt = page.locator("#txt2img_prompt textarea").first
    _type_tag_and_accept(page, prompt, accept_with_click=False)
    page.keyboard.press("ArrowLeft")  # into the tag, as the WebUI's Ctrl+Up/Down needs
    page.keyboard.press("Control+ArrowUp")
    expect(prompt).to_have_value("photo of <hyperlora:anika:0.9>")
    for _ in range(3):
        page.keyboard.press("Control+ArrowDown")
    expect(prompt).to_have_value("photo of <hyperlora:anika:0.75>")

    tab_button(page, "#tabs", "img2img").click()
    prompt = page.locator("#img2img_prompt textarea").first
    expect(prompt).to_be_visible()
    _type_tag_and_accept(page, prompt, accept_with_click=True)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Control+ArrowDown")
    expect(prompt).to_have_value("photo of <hyperlora:anika:0.8>")

    tab_button(page, "#tabs", "txt2img").click()
    page.locator("#txt2img_hr .label-wrap").first.click()  # open Hires. fix: its prompt box shows
    prompt = page.locator("#hires_prompt textarea").first
    expect(prompt).to_be_visible()
    _type_tag_and_accept(page, prompt, accept_with_click=False)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Control+ArrowUp")
    expect(prompt).to_have_value("photo of <hyperlora:anika:0.9>")


def test_panel_fits_the_narrow_img2img_column(webui, page, shots):
    page.set_viewport_size({"width": 1280, "height": 1400})
    tab_button(page, "#tabs", "img2img").click()
    panel = page.locator("#hyperlora_img2img").first
    panel.locator(".label-wrap").first.click()
    tab_button(page, "#hyperlora_img2img_tabs", "Use & manage").click()
    expect(page.locator("#hyperlora_img2img_mix").first).to_be_visible()
    width = panel.evaluate("e => e.getBoundingClientRect().width")
    print(f"\n[e2e] {webui.host} img2img panel width at a 1280 px window: {width:.0f} px")
    assert width < 800, width  # really the narrow column
    overflow = panel.evaluate("e => [...e.querySelectorAll('*')].filter(c => c.offsetParent !== null && "
                              "c.getBoundingClientRect().right > e.getBoundingClientRect().right + 2)"
                              ".map(c => c.id || c.className).slice(0, 5)")
    assert overflow == [], overflow
    panel.screenshot(path=str(shots / f"panel-img2img-narrow-{webui.host}.png"))
