"""The HyperLoRA accordion (gradio 3.41 on A1111, gradio 4.40 on Forge; one code path).

Two tabs for the two jobs: *Create* (photos -> aligned faces with their photo check -> name ->
Create) and *Use & manage* (pick, weight, insert, insert one identity per face for ADetailer, save
as LoRA, mix / slider, rename, delete).
Each tab has its own message line, written only by that tab's buttons, so a message (skipped or
flagged photos, errors) stays until the next action there.

Rules that keep it working on both gradio versions: no ``.style()``, uploads read through
``panel.upload_path``, dropdown values always within their choices, updates via ``gr.update``,
hover help through the hosts' ``tooltip=`` (hints.js), rows that wrap at narrow widths
(``min_width``). Returns the components whose values the Script receives:
(enabled, identity, weight, base).

*Insert for ADetailer* writes into ADetailer's first prompt box, another extension's component that
the Script finds by elem_id (``after_component``). ADetailer's UI is normally built before ours
(metadata.ini: our script loads after ``adetailer``); when it comes later, the function that
``build_accordion`` returns wires the button to it then. Without ADetailer the button shows the text
to copy.
"""

from __future__ import annotations

from typing import Any, Callable

import gradio as gr

from ..app.core.tags import format_tag, put_tag
from ..app.panel.help import HELP, INTRO_CREATE, INTRO_USE, tags_off_notice
from ..app.panel.panel import Panel, code_html
from .card_editor import refresh_cards_js

SLIDER_WEIGHT = 2.0  # the weight slider spans -2..2 (concept sliders need negative weights; tags allow more)


def _choice(names: list[str], wanted: str | None) -> str | None:
    if wanted in names:
        return wanted
    return names[0] if names else None


def build_accordion(panel: Panel, tabname: str, prompt_box: Any = None, adetailer_box: Any = None,
                    open_by_default: bool = False) -> tuple[list[Any], Callable[[Any], None] | None]:
    """Lay out the accordion for ``tabname`` (txt2img / img2img) and wire its buttons; ``prompt_box``
    and ``adetailer_box``: the tab's prompt and ADetailer's first prompt, when they exist already.
    It starts closed (one line above the Script dropdown) unless ``open_by_default`` (setting
    hyperlora_open_accordion). Returns the Script's components and, when ``adetailer_box`` is None, a
    function to call with ADetailer's box if it is created later."""
    service = panel.service
    names = panel.names()
    refresh_cards = refresh_cards_js(tabname)  # the HyperLoRA and Lora card pages show the change
    variants = service.models.variants()
    eid = f"hyperlora_{tabname}"

    def tip(key: str) -> dict:
        return {"elem_id": f"{eid}_{key}", "tooltip": HELP[key]}

    with gr.Accordion("HyperLoRA", open=bool(open_by_default), elem_id=eid):
        if panel.hooks.tags_off:
            gr.Markdown(tags_off_notice(panel.hooks.tags_off), elem_id=f"{eid}_tags_off")
        with gr.Tabs(elem_id=f"{eid}_tabs"):
            with gr.Tab("Create", elem_id=f"{eid}_tab_create"):
                gr.Markdown(INTRO_CREATE, elem_classes=["hyperlora-help"])
                with gr.Row():  # side by side when there is room, stacked in a narrow column
                    with gr.Column(scale=1, min_width=240):
                        files = gr.File(label="Face photos (one person; several are averaged)", file_count="multiple",
                                        file_types=["image"], **tip("files"))
                    with gr.Column(scale=1, min_width=330):  # gradio's gallery cells are >= 100 px wide
                        crops = gr.Gallery(label="Aligned faces · photo check", columns=3, height=230,
                                           preview=False, **tip("crops"))
                with gr.Row():
                    name = gr.Textbox(label="Identity name", placeholder="e.g. alice", max_lines=1, min_width=160,
                                      **tip("name"))
                    variant = gr.Dropdown(label="Model", choices=variants, value=variants[0] if variants else None,
                                          min_width=160, **tip("variant"))
                with gr.Row():
                    remove_bg = gr.Checkbox(value=True, label="Remove background", min_width=140, **tip("remove_bg"))
                    grayscale = gr.Checkbox(value=False, label="Grayscale", min_width=100, **tip("grayscale"))
                    drop_flagged = gr.Checkbox(value=False, label="Leave out photos that look like someone else",
                                               min_width=200, **tip("drop_flagged"))
                    overwrite = gr.Checkbox(value=False, label="Replace an identity of the same name", min_width=200,
                                            **tip("overwrite"))
                # secondary, like the hosts' other extension actions: the page's one primary button stays Generate
                create = gr.Button("Create", variant="secondary", **tip("create"))
                status = gr.HTML(elem_id=f"{eid}_status")

            with gr.Tab("Use & manage", elem_id=f"{eid}_tab_use") as use_tab:
                gr.Markdown(INTRO_USE, elem_classes=["hyperlora-help"])
                with gr.Row():
                    with gr.Column(scale=1, min_width=230):
                        faces = gr.Gallery(label="Faces", columns=2, height=140, preview=False, **tip("faces"))
                    with gr.Column(scale=4, min_width=240):
                        with gr.Row():
                            identity = gr.Dropdown(label="Identity", choices=names, value=_choice(names, None),
                                                   min_width=160, **tip("identity"))
                            refresh = gr.Button("\U0001f504", elem_classes=["tool"], **tip("refresh"))
                        with gr.Row():
                            weight = gr.Slider(minimum=-SLIDER_WEIGHT, maximum=SLIDER_WEIGHT, step=0.05,
                                               value=service.config.default_weight, label="Weight", min_width=160,
                                               **tip("weight"))
                            base = gr.Slider(minimum=0.0, maximum=1.0, step=0.05, value=0.0, min_width=160,
                                             label="Base-LoRA weight (checkpoints with Base-LoRA)", **tip("base"))
                        with gr.Row():
                            insert = gr.Button("Insert tag into prompt", scale=0, min_width=150, **tip("insert"))
                            enabled = gr.Checkbox(value=False, label="Apply without a tag", min_width=160,
                                                  **tip("enabled"))
                gr.Markdown("**Two or more people** — one identity per face, with ADetailer",
                            elem_classes=["hyperlora-section"])
                with gr.Row():
                    per_face = gr.Dropdown(label="Identities, face by face from the left", choices=names, value=[],
                                           multiselect=True, min_width=240, **tip("per_face"))
                    for_adetailer = gr.Button("Insert for ADetailer", variant="secondary", scale=0, min_width=150,
                                              **tip("for_adetailer"))
                manage_status = gr.HTML(elem_id=f"{eid}_manage_status")
                publish_status = gr.HTML(panel.publishing_status(), elem_id=f"{eid}_publish_status")
                gr.Markdown("**Save as LoRA file**", elem_classes=["hyperlora-section"])
                with gr.Row():
                    lora_name = gr.Textbox(label="LoRA file name", placeholder="default: the identity name",
                                           max_lines=1, min_width=160, **tip("lora_name"))
                    lora_overwrite = gr.Checkbox(value=False, label="Overwrite an existing file", min_width=160,
                                                 **tip("lora_overwrite"))
                    save = gr.Button("Save as LoRA", scale=0, min_width=150, **tip("save"))
                gr.Markdown("**Mix / slider** — `0.6*alice + 0.4*bob` or `smiling - neutral`",
                            elem_classes=["hyperlora-section"])
                with gr.Row():
                    expression = gr.Textbox(label="Expression", placeholder="0.6*alice + 0.4*bob, or smiling - neutral",
                                            max_lines=1, min_width=200, **tip("expression"))
                    mix_name = gr.Textbox(label="Name of the mix / slider", max_lines=1, min_width=140,
                                          **tip("mix_name"))
                    mix_overwrite = gr.Checkbox(value=False, label="Replace", min_width=90, **tip("mix_overwrite"))
                    mix = gr.Button("Create mix / slider", scale=0, min_width=150, **tip("mix"))
                gr.Markdown("**Rename or delete**", elem_classes=["hyperlora-section"])
                with gr.Row():
                    new_name = gr.Textbox(label="New name", max_lines=1, min_width=160, **tip("new_name"))
                    rename = gr.Button("Rename", scale=0, min_width=150, **tip("rename"))
                    confirm = gr.Checkbox(value=False, label="Confirm delete", min_width=120, **tip("confirm"))
                    delete = gr.Button("Delete", variant="stop", scale=0, min_width=150, **tip("delete"))

    def identity_update(selected: str | None) -> dict[str, Any]:
        names = panel.names()
        return gr.update(choices=names, value=_choice(names, selected))

    def per_face_update(picked: list[str] | None) -> dict[str, Any]:
        names = panel.names()
        return gr.update(choices=names, value=[n for n in (picked or []) if n in names])

    def on_create(files: list[Any] | None, name: str, variant: str | None, remove_bg: bool, grayscale: bool,
                  overwrite: bool, drop: bool, selected: str | None, progress: Any = gr.Progress()
                  ) -> tuple[list[tuple[Any, str]], str, dict[str, Any]]:
        images, text, created = panel.create(files, name, variant, remove_bg, grayscale, overwrite,
                                             lambda f, d: progress(f, desc=d), drop_flagged=drop)
        return images, text, identity_update(created or selected)

    create.click(on_create, inputs=[files, name, variant, remove_bg, grayscale, overwrite, drop_flagged, identity],
                 outputs=[crops, status, identity], show_progress=True).then(fn=None, _js=refresh_cards)

    def on_mix(text: str, new: str, replace: bool, selected: str | None) -> tuple[str, dict[str, Any]]:
        status_html, created = panel.mix(text, new, replace)
        return status_html, identity_update(created or selected)

    mix.click(on_mix, inputs=[expression, mix_name, mix_overwrite, identity], outputs=[manage_status, identity]) \
        .then(per_face_update, inputs=[per_face], outputs=[per_face]).then(fn=None, _js=refresh_cards)

    def on_refresh(selected: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
        variants = service.models.variants()
        return identity_update(selected), gr.update(choices=variants, value=variants[0] if variants else None)

    refresh.click(on_refresh, inputs=[identity], outputs=[identity, variant])
    refresh.click(per_face_update, inputs=[per_face], outputs=[per_face])
    use_tab.select(identity_update, inputs=[identity], outputs=[identity])  # identities made or renamed elsewhere
    use_tab.select(per_face_update, inputs=[per_face], outputs=[per_face])
    for event in (refresh.click, use_tab.select):  # "keep identities as LoRA files": where it stands
        event(panel.publishing_status, outputs=[publish_status])
    # ``input`` fires on the user's choice only; ``change`` would also fire when Create selects the new
    # identity and overwrite this tab's message.
    identity.input(panel.show, inputs=[identity], outputs=[faces, manage_status])

    if prompt_box is not None:
        def on_insert(prompt: str, selected: str | None, w: float, b: float) -> str:
            return put_tag(prompt, selected, w, b) if selected else prompt

        insert.click(on_insert, inputs=[prompt_box, identity, weight, base], outputs=[prompt_box])
    else:  # no prompt box found (unknown host layout): show the tag to copy instead (escaped: it is HTML)
        insert.click(lambda s, w, b: code_html(format_tag(s, w, b)) if s else "",
                     inputs=[identity, weight, base], outputs=[manage_status])

    late_box: list[Any] = []  # ADetailer's box when it is created after the accordion

    def on_adetailer(current: str | None, picked: list[str] | None, w: float, b: float) -> tuple[str | None, str]:
        """The box is known: write it; the status says so."""
        text, status_html = panel.adetailer_prompt(picked, w, b, current or "")
        return (current if text is None else text), status_html

    def on_adetailer_copy(picked: list[str] | None, w: float, b: float) -> str:
        """Status only: the text to copy (unless the box came late)."""
        return panel.adetailer_prompt(picked, w, b, "" if late_box else None)[1]

    def wire_late(box: Any) -> None:
        late_box.append(box)
        for_adetailer.click(lambda *args: on_adetailer(*args)[0], inputs=[box, per_face, weight, base],
                            outputs=[box])

    if adetailer_box is not None:
        for_adetailer.click(on_adetailer, inputs=[adetailer_box, per_face, weight, base],
                            outputs=[adetailer_box, manage_status])
    else:
        for_adetailer.click(on_adetailer_copy, inputs=[per_face, weight, base], outputs=[manage_status])

    save.click(panel.save_lora, inputs=[identity, lora_name, base, lora_overwrite], outputs=[manage_status]) \
        .then(fn=None, _js=refresh_cards)

    def on_rename(selected: str | None, new: str) -> tuple[str, dict[str, Any]]:
        text, now = panel.rename(selected, new)
        return text, identity_update(now)

    rename.click(on_rename, inputs=[identity, new_name], outputs=[manage_status, identity]) \
        .then(per_face_update, inputs=[per_face], outputs=[per_face]).then(fn=None, _js=refresh_cards)

    def on_delete(selected: str | None, confirmed: bool) -> tuple[str, dict[str, Any], dict[str, Any]]:
        text, now = panel.delete(selected, confirmed)
        return text, identity_update(now), gr.update(value=False)

    delete.click(on_delete, inputs=[identity, confirm], outputs=[manage_status, identity, confirm]) \
        .then(per_face_update, inputs=[per_face], outputs=[per_face]).then(fn=None, _js=refresh_cards)
    return [enabled, identity, weight, base], (None if adetailer_box is not None else wire_late)
