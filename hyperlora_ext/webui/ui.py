"""The HyperLoRA accordion (gradio 3.41 on A1111, gradio 4.40 on Forge; one code path).

Rules that keep it working on both: no ``.style()``, uploads read through
``panel.upload_path``, dropdown values always within their choices, updates via ``gr.update``.
Returns the components whose values the Script receives: (enabled, identity, weight, base).
"""

from __future__ import annotations

import gradio as gr

from .panel import Panel, insert_tag
from .tags import format_tag


def _choice(names: list[str], wanted: str | None) -> str | None:
    if wanted in names:
        return wanted
    return names[0] if names else None


def build_accordion(panel: Panel, tabname: str, prompt_box=None) -> list:
    """Lay out the accordion for ``tabname`` (txt2img / img2img) and wire its buttons."""
    service = panel.service
    names = panel.names()
    variants = service.variants()
    eid = f"hyperlora_{tabname}"
    with gr.Accordion("HyperLoRA", open=False, elem_id=eid):
        with gr.Row():
            with gr.Column(scale=3):
                files = gr.File(label="Face photos (one person; several are averaged)", file_count="multiple",
                                file_types=["image"], elem_id=f"{eid}_files")
            with gr.Column(scale=2):
                crops = gr.Gallery(label="Aligned faces", elem_id=f"{eid}_crops", columns=4, height=200,
                                   preview=False)
        with gr.Row():
            name = gr.Textbox(label="Identity name", placeholder="e.g. alice", elem_id=f"{eid}_name", max_lines=1)
            variant = gr.Dropdown(label="Model", choices=variants, value=variants[0], elem_id=f"{eid}_variant")
            create = gr.Button("Create", variant="primary", elem_id=f"{eid}_create")
        with gr.Row():
            remove_bg = gr.Checkbox(value=True, label="Remove background", elem_id=f"{eid}_remove_bg")
            grayscale = gr.Checkbox(value=False, label="Grayscale", elem_id=f"{eid}_grayscale")
            overwrite = gr.Checkbox(value=False, label="Replace an identity of the same name",
                                    elem_id=f"{eid}_overwrite")
            drop_flagged = gr.Checkbox(value=False, label="Leave out photos that look like someone else",
                                       elem_id=f"{eid}_drop_flagged")
        status = gr.HTML(elem_id=f"{eid}_status")
        with gr.Row():
            identity = gr.Dropdown(label="Identity", choices=names, value=_choice(names, None),
                                   elem_id=f"{eid}_identity")
            refresh = gr.Button("Refresh list", elem_id=f"{eid}_refresh")
            weight = gr.Slider(minimum=0.0, maximum=2.0, step=0.05, value=service.config.default_weight,
                               label="Weight", elem_id=f"{eid}_weight")
            base = gr.Slider(minimum=0.0, maximum=1.0, step=0.05, value=0.0,
                             label="Base-LoRA weight (checkpoints with Base-LoRA)", elem_id=f"{eid}_base")
        with gr.Row():
            insert = gr.Button("Insert tag into prompt", elem_id=f"{eid}_insert")
            enabled = gr.Checkbox(value=False, label="Apply the selected identity without a tag",
                                  elem_id=f"{eid}_enabled")
        with gr.Row():
            lora_name = gr.Textbox(label="LoRA file name", placeholder="default: the identity name",
                                   elem_id=f"{eid}_lora_name", max_lines=1)
            lora_overwrite = gr.Checkbox(value=False, label="Overwrite an existing file",
                                         elem_id=f"{eid}_lora_overwrite")
            save = gr.Button("Save as LoRA", elem_id=f"{eid}_save")
        with gr.Row():  # identity algebra: a mix (0.6*alice + 0.4*bob) or a slider (smiling - neutral)
            expression = gr.Textbox(label="Mix / slider", placeholder="0.6*alice + 0.4*bob, or smiling - neutral",
                                    elem_id=f"{eid}_expression", max_lines=1)
            mix_name = gr.Textbox(label="Name of the mix / slider", elem_id=f"{eid}_mix_name", max_lines=1)
            mix = gr.Button("Create mix / slider", elem_id=f"{eid}_mix")
        with gr.Row():
            new_name = gr.Textbox(label="New name", elem_id=f"{eid}_new_name", max_lines=1)
            rename = gr.Button("Rename", elem_id=f"{eid}_rename")
            confirm = gr.Checkbox(value=False, label="Confirm delete", elem_id=f"{eid}_confirm")
            delete = gr.Button("Delete", variant="stop", elem_id=f"{eid}_delete")

    def identity_update(selected):
        names = panel.names()
        return gr.update(choices=names, value=_choice(names, selected))

    def on_create(files, name, variant, remove_bg, grayscale, overwrite, drop, progress=gr.Progress()):
        images, text, created = panel.create(files, name, variant, remove_bg, grayscale, overwrite,
                                             lambda f, d: progress(f, desc=d), drop_flagged=drop)
        return images, text, identity_update(created)

    create.click(on_create, inputs=[files, name, variant, remove_bg, grayscale, overwrite, drop_flagged],
                 outputs=[crops, status, identity], show_progress=True)

    def on_mix(text, new, replace, selected):
        status_html, created = panel.mix(text, new, replace)
        return status_html, identity_update(created or selected)

    mix.click(on_mix, inputs=[expression, mix_name, overwrite, identity], outputs=[status, identity])

    def on_refresh(selected):
        variants = service.variants()
        return identity_update(selected), gr.update(choices=variants, value=variants[0])

    refresh.click(on_refresh, inputs=[identity], outputs=[identity, variant])
    # ``input`` fires on the user's choice only; ``change`` would also fire when Create selects the new
    # identity and overwrite Create's message (which names the skipped photos).
    identity.input(panel.show, inputs=[identity], outputs=[crops, status])

    if prompt_box is not None:
        def on_insert(prompt, selected, w, b):
            return insert_tag(prompt, selected, w, b) if selected else prompt

        insert.click(on_insert, inputs=[prompt_box, identity, weight, base], outputs=[prompt_box])
    else:  # no prompt box found (unknown host layout): show the tag to copy instead
        insert.click(lambda s, w, b: f"<code>{format_tag(s, w, b)}</code>" if s else "",
                     inputs=[identity, weight, base], outputs=[status])

    save.click(panel.save_lora, inputs=[identity, lora_name, base, lora_overwrite], outputs=[status])

    def on_rename(selected, new):
        text, now = panel.rename(selected, new)
        return text, identity_update(now)

    rename.click(on_rename, inputs=[identity, new_name], outputs=[status, identity])

    def on_delete(selected, confirmed):
        text, now = panel.delete(selected, confirmed)
        return text, identity_update(now), gr.update(value=False)

    delete.click(on_delete, inputs=[identity, confirm], outputs=[status, identity, confirm])
    return [enabled, identity, weight, base]
