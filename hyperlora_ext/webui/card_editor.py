"""The edit button of a HyperLoRA card (Extra Networks): the host's user-metadata editor plus
*Rename*, *Save as LoRA* and *Delete* for that identity.

Built like the built-in Lora page's editor (``ui_edit_user_metadata.LoraUserMetadataEditor``):
a ``UserMetadataEditor`` subclass the page returns from ``create_user_metadata_editor``. Same
module on A1111 and Forge (``modules.ui_extra_networks_user_metadata``); events use ``_js``,
which Forge's gradio 4 shim maps to ``js``. The actions are ``Panel``'s (tested in CI); after a
rename or delete the page's cards are refreshed through the host's own (hidden) refresh button.
"""

from __future__ import annotations

import html
import json
from typing import Any

import gradio as gr
from modules import ui_extra_networks_user_metadata

from ..app.panel.help import HELP
from ..app.panel.panel import Panel, identity_facts

CARD_PAGES = ("hyperlora", "lora")  # our page, and the Lora page that lists published identities


def refresh_cards_js(tabname: str, pages: tuple[str, ...] = CARD_PAGES) -> str:
    """JS that reloads the cards of ``pages`` in ``tabname`` (each page's hidden refresh control, as its own
    refresh button does) after an action changed identities or LoRA files; a page not built is skipped."""
    ids = json.dumps([f"{tabname}_{page}_extra_refresh_internal" for page in pages])
    return (f"function(){{ {ids}.forEach(function(id){{ var b = document.getElementById(id); "
            "if (b) b.dispatchEvent(new Event('click')); }); }")


class HyperLoRAUserMetadataEditor(ui_extra_networks_user_metadata.UserMetadataEditor):
    def __init__(self, ui: Any, tabname: str, page: Any, panel: Panel) -> None:
        super().__init__(ui, tabname, page)
        self.panel = panel

    def _tip(self, key: str) -> dict:
        return {"elem_id": f"{self.id_part}_{key}", "tooltip": HELP[key]}

    def get_metadata_table(self, name: str) -> list[tuple[str, str]]:
        table = super().get_metadata_table(name)
        try:
            identity = self.panel.service.identities.get(name)
        except KeyError:
            return [*table, ("Problem:", f"no identity named {name!r} any more (refresh the page)")]
        except Exception as exc:  # a damaged file: say so in the table, never a traceback
            return [*table, ("Problem:", str(exc))]
        return [*table, *((label, html.escape(value)) for label, value in
                          identity_facts(identity, self.panel.service.config.default_weight))]

    def _forget(self, name: str) -> None:
        self.page.items.pop(name, None)

    def _remember(self, name: str) -> None:
        self.page.lister.reset()  # the host caches folder listings: see the renamed preview
        item = self.page.create_item(name)
        if item is not None:
            self.page.items[name] = item

    def create_editor(self) -> None:
        self.create_default_editor_elems()
        self.edit_notes = gr.TextArea(label="Notes", lines=3)
        gr.Markdown("**This identity**", elem_classes=["hyperlora-section"])
        with gr.Row():
            new_name = gr.Textbox(label="New name", max_lines=1, min_width=160, **self._tip("new_name"))
            rename = gr.Button("Rename", scale=0, min_width=140, **self._tip("rename"))
        with gr.Row():
            lora_name = gr.Textbox(label="LoRA file name", placeholder="default: the identity name", max_lines=1,
                                   min_width=160, **self._tip("lora_name"))
            lora_overwrite = gr.Checkbox(value=False, label="Overwrite an existing file", min_width=140,
                                         **self._tip("lora_overwrite"))
            save_lora = gr.Button("Save as LoRA", scale=0, min_width=140, **self._tip("save"))
        with gr.Row():
            confirm = gr.Checkbox(value=False, label="Confirm delete", min_width=120, **self._tip("confirm"))
            delete = gr.Button("Delete", variant="stop", scale=0, min_width=140, **self._tip("delete"))
        actions_status = gr.HTML(elem_id=f"{self.id_part}_hyperlora_status")
        self.create_default_buttons()

        def values(name: str) -> tuple[Any, ...]:
            shown = self.put_values_into_components(name)
            return (*shown, name, gr.update(value=False), gr.update(value=False), "")

        self.button_edit.click(
            fn=values, inputs=[self.edit_name_input],
            outputs=[self.edit_name, self.edit_description, self.html_filedata, self.html_preview, self.edit_notes,
                     new_name, lora_overwrite, confirm, actions_status],
        ).then(fn=lambda: gr.update(visible=True), inputs=[], outputs=[self.box])
        self.setup_save_handler(self.button_save, self.save_user_metadata, [self.edit_description, self.edit_notes])

        def on_rename(name: str, new: str) -> tuple[Any, ...]:
            text, now = self.panel.rename(name, new)
            if now and now != name:
                self._forget(name)
                self._remember(now)
            now = now or name
            return text, now, html.escape(now), *self.put_values_into_components(now)[2:4]

        rename.click(fn=on_rename, inputs=[self.edit_name_input, new_name],
                     outputs=[actions_status, self.edit_name_input, self.edit_name, self.html_filedata,
                              self.html_preview]
                     ).then(fn=None, _js=refresh_cards_js(self.tabname))

        save_lora.click(fn=lambda name, file, over: self.panel.save_lora(name, file, 0.0, over),
                        inputs=[self.edit_name_input, lora_name, lora_overwrite], outputs=[actions_status]
                        ).then(fn=None, _js=refresh_cards_js(self.tabname, ("lora",)))

        def on_delete(name: str, confirmed: bool) -> tuple[str, dict[str, Any]]:
            text, _ = self.panel.delete(name, confirmed)
            if confirmed and name not in self.panel.service.identities.store:
                self._forget(name)
            return text, gr.update(value=False)

        delete.click(fn=on_delete, inputs=[self.edit_name_input, confirm], outputs=[actions_status, confirm]
                     ).then(fn=None, _js=refresh_cards_js(self.tabname))

    def save_user_metadata(self, name: str, desc: str, notes: str) -> None:
        if name not in self.page.items:  # renamed or deleted while the editor was open
            self._remember(name)
        if name in self.page.items:
            super().save_user_metadata(name, desc, notes)

