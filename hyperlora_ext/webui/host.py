"""Wires the extension into the running WebUI (A1111 or Forge, detected at run time).

``Extension`` is created once per process by ``scripts/hyperlora.py`` and registers the
callbacks: settings (``on_ui_settings``), the ``hyperlora`` extra network, the Extra
Networks page and the X/Y/Z plot axes (``on_before_ui``), the names route of the prompt autocomplete and
the HTTP API (``on_app_started``; the API only with ``--api``),
infotext pasting, and clean-up (``on_script_unloaded``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from pathlib import Path
from typing import Iterator

from modules import script_callbacks, shared

from ..app.infotext_paste import point_tags_at_renamed
from ..app.panel import HostHooks, Panel
from ..app.service import HyperLoRAService, ServiceConfig
from ..app.settings import OPTIONS, SECTION, open_accordion, service_config

log = logging.getLogger(__name__)


def is_forge() -> bool:
    return importlib.util.find_spec("modules_forge") is not None


def _webui_models_dir() -> str:
    from modules import paths

    return paths.models_path


def _device() -> str:
    try:
        from modules import devices

        return str(devices.device)
    except Exception:
        return "auto"


def _lora_dir() -> Path:
    lora_dir = getattr(shared.cmd_opts, "lora_dir", None)
    return Path(lora_dir) if lora_dir else Path(_webui_models_dir()) / "Lora"


@contextlib.contextmanager
def _gpu_lock() -> Iterator[None]:
    """Held while the panel or the API runs HyperLoRA: the WebUI's queue lock (generations and
    checkpoint switches), and on A1111 also the lock its start-up thread holds while it loads the
    SD model. A1111 patches torch globally while it builds a model (new layers on the meta device,
    ``Module.to`` a no-op), so HyperLoRA must never load at the same time (seen: Create pressed
    right after start-up failed with "'NoneType' object has no attribute 'eval'")."""
    from modules import sd_models
    from modules.call_queue import queue_lock

    model_lock = getattr(getattr(sd_models, "model_data", None), "lock", None)  # Forge has none
    with queue_lock, (model_lock or contextlib.nullcontext()):
        yield


class Extension:
    def __init__(self) -> None:
        self.forge = is_forge()
        self.service = HyperLoRAService(self.config, free_memory=self._free_memory if self.forge else None)
        self.hooks = HostHooks(lora_dir=_lora_dir, lora_saved=self._lora_saved, gpu_lock=_gpu_lock)
        self.panel = Panel(self.service, self.hooks)
        self.host = self._make_host()
        script_callbacks.on_ui_settings(self.ui_settings)
        script_callbacks.on_before_ui(self.before_ui)
        script_callbacks.on_app_started(self.app_started)
        script_callbacks.on_infotext_pasted(self.infotext_pasted)
        script_callbacks.on_script_unloaded(self.unload)

    def _make_host(self):
        """The host adapter, or None (with a logged explanation) when the Lora extension is off."""
        try:
            if self.forge:
                from .forge import ForgeHost

                return ForgeHost(self.service)
            from .a1111 import A1111Host

            return A1111Host(self.service)
        except ImportError as exc:
            log.error("HyperLoRA: <hyperlora> tags are disabled because the WebUI's built-in Lora extension "
                      "(%s) is not loaded (%s). Enable it in Extensions -> Installed and restart; the panel "
                      "still creates identities and saves LoRA files.", "sd_forge_lora" if self.forge else "Lora", exc)
            return None

    def open_accordion(self) -> bool:
        """Read when the page is built (A1111 and Forge load config.json before the scripts' UI)."""
        return open_accordion(shared.opts)

    def config(self) -> ServiceConfig:
        return service_config(shared.opts, shared.cmd_opts, _webui_models_dir(), _device())

    # ---- callbacks ---------------------------------------------------------------------------
    def ui_settings(self) -> None:
        import gradio as gr

        components = {"textbox": gr.Textbox, "slider": gr.Slider, "radio": gr.Radio, "checkbox": None}
        for option in OPTIONS:
            info = shared.OptionInfo(option.default, option.label, components[option.kind], option.args or None,
                                     section=SECTION)
            if option.info:
                info = info.info(option.info)
            if option.reload_ui:
                info = info.needs_reload_ui()
            shared.opts.add_option(option.key, info)

    def before_ui(self) -> None:
        from modules import ui_extra_networks

        from .pages import ExtraNetworksPageHyperLoRA

        if self.host is not None:
            self.extra_network = self.host.install()
        ui_extra_networks.register_page(ExtraNetworksPageHyperLoRA(self.panel))
        self.add_xyz_axes()

    def add_xyz_axes(self) -> None:
        """X/Y/Z plot axes; before the UI is built, which copies the axis list (``xyz_axes``)."""
        from modules import scripts

        from ..app.xyz_axes import register

        try:
            register(scripts.scripts_data, self.panel.names, lambda: self.service.config.default_weight)
        except Exception:
            log.exception("HyperLoRA: adding the X/Y/Z plot axes failed")

    def app_started(self, demo, app) -> None:
        from ..app.names_route import add_names_route

        add_names_route(app, self.panel.names, lambda: self.service.config.default_weight)  # autocomplete
        if not getattr(shared.cmd_opts, "api", False):
            return
        from ..app.api import make_router, parse_api_auth

        app.include_router(make_router(self.service, self.hooks, parse_api_auth(shared.cmd_opts.api_auth)))

    def infotext_pasted(self, infotext: str, params: dict) -> None:
        point_tags_at_renamed(params, self.service.identities)

    def unload(self) -> None:
        if self.host is not None:
            self.host.uninstall()

    def _lora_saved(self, path: Path) -> None:
        if self.host is not None:
            self.host.lora_saved(path)

    def _free_memory(self, nbytes: int) -> None:
        if self.host is not None:
            self.host.free_memory(nbytes)
