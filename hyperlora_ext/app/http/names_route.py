"""``GET /hyperlora/ui/names``: identity names for the prompt autocomplete (``javascript/hyperlora.js``);
``GET /hyperlora/ui/help``: the controls' hover help (Forge's gradio 4 does not pass ``tooltip=`` on).

The HTTP API (``api.py``) is mounted only with ``--api``; the page's script needs the names on
every WebUI, so this one small read-only route sits beside the UI like the host's own
``/sd_extra_networks/*`` routes (same access as the page itself). The help texts are the panel's
(``panel.help.HELP``), handed in by the host. No WebUI imports here.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

from fastapi import FastAPI

log = logging.getLogger(__name__)
PATH = "/hyperlora/ui/names"
HELP_PATH = "/hyperlora/ui/help"  # the controls' hover help, for hosts whose gradio drops ``tooltip=``


def names_payload(names: Callable[[], list[str]], default_weight: Callable[[], float]) -> dict:
    """``{"names": [...], "weight": 0.85}``, or ``{"names": [], "weight": ..., "error": ...}`` when
    the folder cannot be read (the autocomplete then simply offers nothing)."""
    try:
        weight = float(default_weight())
    except Exception:
        log.exception("HyperLoRA: reading the default weight failed")
        weight = 0.85
    try:
        return {"names": list(names()), "weight": weight}
    except Exception as exc:
        log.exception("HyperLoRA: listing the identities for the autocomplete failed")
        return {"names": [], "weight": weight, "error": f"{type(exc).__name__}: {exc}"}


def add_names_route(app: FastAPI, names: Callable[[], list[str]], default_weight: Callable[[], float],
                    help_texts: Mapping[str, str]) -> None:
    """Mount ``GET PATH`` and ``GET HELP_PATH`` (``help_texts``: control -> hover help) on the WebUI's
    FastAPI ``app`` (no-op when they are mounted already)."""
    if any(getattr(route, "path", None) == PATH for route in getattr(app, "routes", [])):
        return

    def hyperlora_names() -> dict:
        return names_payload(names, default_weight)

    def hyperlora_help() -> dict:
        return {"help": dict(help_texts)}

    app.add_api_route(PATH, hyperlora_names, methods=["GET"])
    app.add_api_route(HELP_PATH, hyperlora_help, methods=["GET"])
