"""The HyperLoRA page of the Extra Networks tabs: one card per stored identity.

Cards are the identity files themselves (``<identities>/NAME.safetensors``), previews their
``NAME.preview.png`` (the aligned face); clicking a card inserts ``<hyperlora:NAME:w>``; its edit
button opens ``card_editor`` (notes, rename, Save as LoRA, delete).
Uses the host's ``modules.ui_extra_networks`` (same API on A1111 and Forge).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterator

from modules import ui_extra_networks
from modules.ui_extra_networks import quote_js

from ..app.core.tags import TAG

if TYPE_CHECKING:  # annotations only: the editor module loads with the first editor
    from .card_editor import HyperLoRAUserMetadataEditor
from ..app.panel.panel import Panel


class ExtraNetworksPageHyperLoRA(ui_extra_networks.ExtraNetworksPage):
    def __init__(self, panel: Panel) -> None:
        super().__init__("HyperLoRA")
        self.panel = panel
        self.service = panel.service

    def refresh(self) -> None:
        pass  # the store lists the folder again whenever it changed

    def create_item(self, name: str, index: int | None = None, enable_filter: bool = True) -> dict | None:
        store = self.service.identities.store
        path = store.path(name)
        if not path.is_file():
            return None
        stem = os.path.splitext(str(path))[0]
        weight = self.service.config.default_weight
        item = {
            "name": name,
            "filename": str(path),
            "shorthash": self._shorthash(name),  # the host's Tree view reads item["shorthash"]
            "preview": self.find_preview(stem),
            "description": self.find_description(stem),
            "search_terms": [self.search_terms_from_path(str(path))],
            "local_preview": str(store.preview_path(name)),
            "sort_keys": {"default": index or 0, **self.get_sort_keys(str(path))},
            "prompt": quote_js(f"<{TAG}:{name}:{weight:g}>"),
        }
        self.read_user_metadata(item)
        return item

    def _shorthash(self, name: str) -> str | None:
        """The identity's hash (12 hex digits), or None for a file that cannot be read (its card
        still shows; the card editor says what is wrong)."""
        try:
            return self.service.identities.get(name).hash
        except Exception:
            return None

    def list_items(self) -> Iterator[dict]:
        for index, name in enumerate(self.service.identities.store.names()):
            item = self.create_item(name, index)
            if item is not None:
                yield item

    def allowed_directories_for_previews(self) -> list[str]:
        return [str(self.service.config.identity_folder)]

    def create_user_metadata_editor(self, ui: Any, tabname: str) -> HyperLoRAUserMetadataEditor:
        from .card_editor import HyperLoRAUserMetadataEditor

        return HyperLoRAUserMetadataEditor(ui, tabname, self, self.panel)
