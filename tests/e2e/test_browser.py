"""Browser checks of the HyperLoRA panel, the card editor and javascript/hyperlora.js in headless Chromium.

One WebUI and one page per host, tests in file order (the later ones use identities the first
creates): the accordion starts closed (one line above the Script dropdown) with a secondary Create
button, create through the *Create* tab with a face-less and a flagged photo (messages stay),
hover help on every control, insert / save as LoRA / mix through *Use & manage*, manage an identity
from its Extra Networks card editor (rename, Save as LoRA, delete), ``<hyperlora:an`` autocomplete
and Ctrl+Up/Down in the txt2img, img2img and hires-fix prompts, none in the negative prompts (ADetailer's
too when $HYPERLORA_E2E_ADETAILER links it), the panel in the narrow img2img column, a 30-name list
that scrolls with the mouse wheel, and last (it restarts the WebUI) the setting that opens the panel.
With $HYPERLORA_E2E_DOCS_IMAGES set, ``test_docs_images`` also writes the README's screenshots
(docs_images.py, tests/e2e/README.md). Every wait is on a condition (Playwright ``expect``), never a fixed
sleep, except the one window in which a popup must *not* appear. Chromium: see browser_helpers.py.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import docs_images
import pytest
from browser_helpers import (
    EID,
    LONG,
    expect,
    field,
    open_panel,
    panel_is_open,
    screenshots,
    status,
    tab_button,
    webui_page,
)
from e2e_helpers import VARIANT, encode
from face_pack import face_image
from PIL import Image

from hyperlora_ext.app.panel.help import HELP
from hyperlora_ext.model.locations import VARIANTS, ModelLocations

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
    with webui_page(webui.url, open_txt2img_panel=False) as pg:  # test_closed_by_default opens it
        yield pg


def test_closed_by_default_with_a_secondary_create_button(webui, page, shots):
    """A fresh page: the HyperLoRA accordion is one closed line in txt2img and img2img (setting
    hyperlora_open_accordion off), and Create is a secondary button like the hosts' other extension actions."""
    for tab in ("img2img", "txt2img"):
        tab_button(page, "#tabs", tab).click()
        eid = f"#hyperlora_{tab}"
        label = page.locator(f"{eid} .label-wrap").first
        expect(label).to_be_visible()
        assert not panel_is_open(page, eid), f"{tab}: the HyperLoRA accordion is open on a fresh page"
        height = page.locator(eid).first.evaluate("e => e.getBoundingClientRect().height")
        print(f"\n[e2e] {webui.host} {tab}: closed HyperLoRA accordion {height:.0f} px high")
        assert height < 60, height
    page.locator("#txt2img_settings, #txt2img_script_container").first.screenshot(
        path=str(shots / f"closed-accordion-{webui.host}.png"))
    open_panel(page)
    create = page.locator(f"{EID}_create").first
    expect(create).to_be_visible()
    classes = create.get_attribute("class").split()
    assert "secondary" in classes and "primary" not in classes, classes


def test_create_with_a_flagged_and_a_faceless_photo(webui, page, shots, tmp_path):
    """Create tab: two photos of dana, one of someone else, one without a face. The status names the
    skipped photo and flags the stranger, the gallery captions flag its face, and the message stays
    when the other tab is used."""
    files = []
    for i, img in enumerate([face_image(pattern=80, seed=1), face_image(pattern=80, seed=2),
                             face_image(pattern=-80, seed=4), Image.new("RGB", (200, 200), (20, 40, 160))]):
        files.append(tmp_path / ("sky.png" if i == 3 else f"dana{i}.png"))
        img.save(files[-1])
    open_panel(page)
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
    open_panel(page)
    for label, keys in tabs.items():
        tab_button(page, f"{EID}_tabs", label).click()
        for key in keys:
            expect(page.locator(f"{EID}_{key}").first).to_have_attribute("title", HELP[key])
    tab_button(page, f"{EID}_tabs", "Create").click()


def test_use_tab_inserts_saves_and_mixes(webui, page, shots):
    api_create(webui, "erin", -80, seeds=(4, 5))
    open_panel(page)
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


def open_card_editor(page, name: str):
    """The HyperLoRA Extra Networks page of txt2img, its cards read again (what the page's refresh icon does:
    click the host's hidden refresh button), and the card editor of identity ``name``."""
    tab_button(page, "#txt2img_extra_tabs", "HyperLoRA").click()
    page.evaluate("document.getElementById('txt2img_hyperlora_extra_refresh_internal')"
                  ".dispatchEvent(new Event('click'))")
    card = page.locator(f'#txt2img_hyperlora_cards .card[data-name="{name}"]')
    expect(card).to_be_visible(timeout=LONG)
    card.hover()
    card.locator(".edit-button").click()
    return page.locator(EDITOR)


def test_card_editor_renames_saves_and_deletes(webui, page, shots):
    api_create(webui, "fern", 80, seeds=(3,))
    editor = open_card_editor(page, "fern")
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


def _no_popup_while_typing(page, box: str, names_requests: list[str]) -> None:
    """Type a tag into the prompt box ``box`` and watch for 1.5 s: no suggestion list, no names request. (A
    popup must *not* appear, so this one wait has a length; in a positive box the list shows within
    milliseconds, see ``_type_tag_and_accept``.)"""
    area = page.locator(f"{box} textarea").first
    expect(area).to_be_visible()
    area.fill("")
    area.click()
    before = len(names_requests)
    page.keyboard.type("photo of <hyperlora:")  # an empty name: the script would ask for the names at once
    page.keyboard.type("an")
    page.wait_for_timeout(1500)
    expect(page.locator("#hyperlora_suggestions")).to_be_hidden()
    assert len(names_requests) == before, f"{box}: the suggestions asked for the names"
    expect(area).to_have_value("photo of <hyperlora:an")  # nothing inserted either
    area.fill("")


def test_no_suggestions_in_negative_prompts(webui, page):
    """Tags are applied from positive prompts only, so ``<hyperlora:`` opens no list in the negative prompts of
    txt2img, hires fix and img2img, nor in ADetailer's negative prompt (when linked), while its positive
    prompt does suggest (a tag there is applied to ADetailer's pass)."""
    names_requests: list[str] = []
    page.on("request", lambda r: names_requests.append(r.url) if "/hyperlora/ui/names" in r.url else None)
    tab_button(page, "#tabs", "txt2img").click()
    tab_button(page, "#txt2img_extra_tabs", "Generation").click()
    _no_popup_while_typing(page, "#txt2img_neg_prompt", names_requests)
    if not page.locator("#hires_neg_prompt textarea").first.is_visible():
        page.locator("#txt2img_hr .label-wrap").first.click()
    _no_popup_while_typing(page, "#hires_neg_prompt", names_requests)
    if os.environ.get("HYPERLORA_E2E_ADETAILER"):
        ad = "#script_txt2img_adetailer"
        if not page.locator(f"{ad}_ad_negative_prompt textarea").first.is_visible():
            page.locator(f"{ad}_ad_main_accordion .label-wrap").first.click()
        _no_popup_while_typing(page, f"{ad}_ad_negative_prompt", names_requests)
        _type_tag_and_accept(page, page.locator(f"{ad}_ad_prompt textarea").first, accept_with_click=True)
        assert names_requests, "the ADetailer prompt's suggestions did not ask for the names"
    else:
        print("\n[e2e] ADetailer not linked (HYPERLORA_E2E_ADETAILER): its prompts not checked")
    tab_button(page, "#tabs", "img2img").click()
    _no_popup_while_typing(page, "#img2img_neg_prompt", names_requests)
    tab_button(page, "#tabs", "txt2img").click()


def test_insert_for_adetailer_writes_one_part_per_face(webui, page):
    """*Use & manage* -> *Insert for ADetailer*: the identities picked, in order, as ADetailer's per-face prompt,
    written into ADetailer's own first prompt box (another extension's component on the real page)."""
    if not os.environ.get("HYPERLORA_E2E_ADETAILER"):
        pytest.skip("set HYPERLORA_E2E_ADETAILER to an ADetailer checkout")
    api_create(webui, "face_left", 60, seeds=(6,))  # names listed after the screenshots' "anika, astronaut"
    api_create(webui, "face_right", -60, seeds=(7,))
    tab_button(page, "#tabs", "txt2img").click()
    tab_button(page, "#txt2img_extra_tabs", "Generation").click()
    ad = "#script_txt2img_adetailer"
    box = page.locator(f"{ad}_ad_prompt textarea").first
    if not box.is_visible():
        page.locator(f"{ad}_ad_main_accordion .label-wrap").first.click()
    box.fill("")
    open_panel(page)
    tab_button(page, f"{EID}_tabs", "Use & manage").click()
    page.click(f"{EID}_refresh")
    picker = page.locator(f"{EID}_per_face input").first
    for name in ("face_left", "face_right"):
        picker.click()
        picker.fill(name)
        picker.press("Enter")
    page.click(f"{EID}_for_adetailer")
    expect(box).to_have_value("<hyperlora:face_left:0.85> photo of a face [SEP] "
                              "<hyperlora:face_right:0.85> photo of a face")
    expect(status(page, f"{EID}_manage_status")).to_contain_text("Wrote one part per face into ADetailer's prompt")


def test_panel_fits_the_narrow_img2img_column(webui, page, shots):
    page.set_viewport_size({"width": 1280, "height": 1400})
    tab_button(page, "#tabs", "img2img").click()
    panel = page.locator("#hyperlora_img2img").first
    open_panel(page, "#hyperlora_img2img")
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


def _calm(page) -> None:
    """No focus ring and no hover highlight in a screenshot."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.mouse.move(0, 0)


def test_docs_images(webui, page, tmp_path):
    """With $HYPERLORA_E2E_DOCS_IMAGES=<folder>: the README's four screenshots of a first use, with the public-domain
    astronaut portrait as the face (docs_images.py): the Create tab with her photos and aligned faces, Use & manage,
    her card editor and the tag autocomplete. Each is cropped to its part of the page and kept under 400 KB."""
    out = docs_images.folder()
    if out is None:
        pytest.skip("set HYPERLORA_E2E_DOCS_IMAGES to a folder (docs/images) to write the README's screenshots")
    photos = docs_images.astronaut_photos(tmp_path)
    page.set_viewport_size({"width": 1400, "height": 1600})
    tab_button(page, "#tabs", "txt2img").click()
    tab_button(page, "#txt2img_extra_tabs", "Generation").click()
    open_panel(page)
    # the suite's small checkpoint under the released checkpoint's name, as a user's Model list shows it
    checkpoints = ModelLocations.under(webui.models_dir).hyper_lora
    docs_images.link_checkpoint(checkpoints / VARIANT, checkpoints / VARIANTS[0])
    tab_button(page, f"{EID}_tabs", "Use & manage").click()
    page.click(f"{EID}_refresh")  # re-reads the identities and the models
    tab_button(page, f"{EID}_tabs", "Create").click()
    model = page.locator(f"{EID}_variant input").first
    model.click()
    page.locator(f"{EID}_variant ul.options li", has_text=VARIANTS[0]).first.click()
    _calm(page)
    expect(model).to_have_value(VARIANTS[0])
    clear = page.locator(f"{EID}_files button[aria-label='Clear']")  # the photos of an earlier Create
    if clear.count():
        clear.first.click()
    page.locator(f"{EID}_files input[type=file]").first.set_input_files([str(f) for f in photos])
    field(page, f"{EID}_name").fill("astronaut")
    page.click(f"{EID}_create")
    created = status(page, f"{EID}_status")
    expect(created).to_contain_text("Created 'astronaut' from 3 face(s)", timeout=LONG)
    expect(model).to_have_value(VARIANTS[0])
    assert "looks like someone else" not in created.inner_text(), created.inner_text()
    expect(page.locator(f"{EID}_crops img")).to_have_count(3)
    _calm(page)
    sizes = {}
    sizes["panel-create.png"] = docs_images.save_png(page.locator(EID).first.screenshot(), out / "panel-create.png")

    tab_button(page, f"{EID}_tabs", "Use & manage").click()
    picker = page.locator(f"{EID}_identity input").first
    expect(picker).to_have_value("astronaut")  # Create selected her; her faces show once she is picked
    for name in ("anika", "astronaut"):
        picker.click()
        picker.fill(name)
        picker.press("Enter")
        expect(status(page, f"{EID}_manage_status")).to_contain_text(f"{name}: ")
    expect(page.locator(f"{EID}_faces img")).to_have_count(3)
    for key in ("lora_name", "expression", "mix_name", "new_name"):  # what earlier tests typed
        field(page, f"{EID}_{key}").fill("")
    _calm(page)
    sizes["panel-use.png"] = docs_images.save_png(page.locator(EID).first.screenshot(), out / "panel-use.png")
    tab_button(page, f"{EID}_tabs", "Create").click()

    editor = open_card_editor(page, "astronaut")
    expect(editor).to_contain_text("Identity hash:")
    expect(field(page, f"{EDITOR}_new_name")).to_have_value("astronaut")
    field(page, f"{EDITOR}_lora_name").fill("")  # what the card editor test typed
    _calm(page)
    sizes["card-editor.png"] = docs_images.save_png(page.screenshot(clip=docs_images.clip_to_backdrop(page, EDITOR)),
                                                    out / "card-editor.png")
    editor.get_by_role("button", name="Cancel").click()
    expect(editor).to_be_hidden()

    tab_button(page, "#txt2img_extra_tabs", "Generation").click()
    prompt = page.locator("#txt2img_prompt textarea").first
    prompt.fill("")
    prompt.click()
    page.keyboard.type("portrait photo of <hyperlora:")
    suggestions = page.locator("#hyperlora_suggestions")
    expect(suggestions.locator(".hyperlora-suggestion", has_text=re.compile("^astronaut$"))).to_be_visible()
    page.keyboard.press("ArrowDown")  # astronaut (second after anika): a picked row shows the highlight
    expect(suggestions.locator(".hyperlora-suggestion.selected")).to_have_text("astronaut")
    clip = docs_images.clip_around(page, ["#txt2img_prompt", "#hyperlora_suggestions"])
    sizes["autocomplete.png"] = docs_images.save_png(page.screenshot(clip=clip), out / "autocomplete.png")
    page.keyboard.press("Escape")
    expect(suggestions).to_be_hidden()
    prompt.fill("")
    print(f"\n[e2e] {webui.host} docs images in {out}: {sizes}")


def test_long_suggestion_list_scrolls_with_the_wheel(webui, page):
    """30 identities starting with "zz": all of them are listed, the mouse wheel scrolls the list down to the
    last one (the list must not be rebuilt by its own scrolling), and a click inserts it."""
    api_create(webui, "zz01", 80, seeds=(6,))
    api_create(webui, "zz02", -80, seeds=(7,))
    for i in range(3, 31):  # mixes cost no model run
        mix = {"name": f"zz{i:02d}", "expression": f"{i}*zz01 + {31 - i}*zz02"}
        r = webui.post("/hyperlora/v1/identities/mix", mix)
        assert r.status_code == 200, r.text
    page.set_viewport_size({"width": 1400, "height": 1600})
    tab_button(page, "#tabs", "txt2img").click()
    tab_button(page, "#txt2img_extra_tabs", "Generation").click()
    prompt = page.locator("#txt2img_prompt textarea").first
    prompt.fill("")
    prompt.click()
    page.keyboard.type("photo of <hyperlora:zz")
    popup = page.locator("#hyperlora_suggestions")
    items = popup.locator(".hyperlora-suggestion")
    expect(items).to_have_count(30)
    expect(items.last).to_have_text("zz30")
    inside = ("(p, i) => { const a = p.getBoundingClientRect(), b = i.getBoundingClientRect();"
              " return b.top >= a.top - 1 && b.bottom <= a.bottom + 1; }")
    last = items.last.element_handle()
    assert not popup.evaluate(inside, last), "the list is short enough to show all"
    box = popup.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(3):
        page.mouse.wheel(0, 400)
    page.wait_for_function("() => { const p = document.getElementById('hyperlora_suggestions'); "
                           "return p && p.scrollTop > 0 && p.scrollTop + p.clientHeight >= p.scrollHeight - 2; }")
    assert popup.evaluate(inside, last), "the last name is not in view after the wheel"
    at = items.last.bounding_box()
    page.mouse.click(at["x"] + at["width"] / 2, at["y"] + at["height"] / 2)  # no auto-scroll: where the wheel put it
    expect(prompt).to_have_value("photo of <hyperlora:zz30:0.85>")
    expect(popup).to_be_hidden()
    prompt.fill("")


def test_setting_opens_the_panel_on_page_load(webui, page):
    """Settings -> HyperLoRA -> "Open the HyperLoRA panel ... when the page loads": off by default and marked as
    needing Reload UI in the Settings tab; once on, the panel is open in txt2img and img2img when the page is built
    again. Last in the module: it restarts the WebUI (what Reload UI does to the page). The option is set through
    the API: the Settings tab's Apply would also reload the checkpoint (the harness starts with --ckpt), which takes
    minutes on a CPU."""
    tab_button(page, "#tabs", "Settings").click()
    tab_button(page, "#settings", "HyperLoRA").click()
    setting = page.locator("#setting_hyperlora_open_accordion").first
    expect(setting).to_be_visible()
    expect(setting).to_contain_text("Open the HyperLoRA panel")
    expect(setting).to_contain_text("requires Reload UI")
    expect(setting.locator("input[type=checkbox]")).not_to_be_checked()
    assert webui.post("/sdapi/v1/options", {"hyperlora_open_accordion": True}).status_code == 200
    # (GET /sdapi/v1/options leaves out extension settings on Forge: its response model predates them)
    assert json.loads((webui.data_dir / "config.json").read_text())["hyperlora_open_accordion"] is True

    webui.stop()
    webui.start(write_config=False)  # keeps the config.json the option was saved to
    page.goto(webui.url, timeout=LONG)
    page.wait_for_selector(f"{EID} .label-wrap", timeout=LONG)
    for tab in ("txt2img", "img2img"):
        tab_button(page, "#tabs", tab).click()
        expect(page.locator(f"#hyperlora_{tab}_tabs").first).to_be_visible()
        assert panel_is_open(page, f"#hyperlora_{tab}")
    tab_button(page, "#tabs", "Settings").click()
    tab_button(page, "#settings", "HyperLoRA").click()
    expect(page.locator("#setting_hyperlora_open_accordion input[type=checkbox]").first).to_be_checked()
