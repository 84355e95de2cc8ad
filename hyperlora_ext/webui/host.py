"""Wires the extension into the running WebUI (A1111 or a Forge, detected at run time by capability).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from fastapi import FastAPI
from modules import script_callbacks, shared

from ..app.core.host_hooks import HostHooks
from ..app.core.service import HyperLoRAService, ServiceConfig
from ..app.generation.infotext_paste import point_tags_at_renamed
from ..app.generation.processing import Processing
from ..app.panel.help import HELP
from ..app.panel.panel import Panel
from ..app.panel.settings import OPTIONS, PUBLISH_KEY, SECTION, open_accordion, service_config
from ..version import __version__
from .extra_network import ExtraNetworkTagsOff, HostAdapter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostFamily:
    """A family of WebUIs that apply LoRAs the same way, and the adapter module written for it."""

    name: str
    hosts: str
    lora_extension: str  # the built-in Lora extension's folder


A1111 = HostFamily("A1111", "AUTOMATIC1111", "extensions-builtin/Lora")
NEW_FORGE = HostFamily("new Forge (backend.patcher.lora)", "Forge 2, reForge2, Forge Neo",
                       "extensions-builtin/sd_forge_lora")
LDM_PATCHED = HostFamily("Forge on ldm_patched (ldm_patched.modules.lora)", "reForge, Forge Classic, Forge 0.0.x",
                         "extensions-builtin/Lora")
UNKNOWN_FORGE = HostFamily("an unknown Forge (modules_forge without backend.patcher.lora or ldm_patched.modules.lora)",
                           "none supported", "")


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package is missing
        return False


def host_family() -> HostFamily:
    """The family by what the WebUI has: no ``modules_forge`` is A1111; then Forge's ``backend``
    LoRA code, else ``ldm_patched``'s."""
    if not _has_module("modules_forge"):
        return A1111
    if _has_module("backend.patcher.lora"):
        return NEW_FORGE
    if _has_module("ldm_patched.modules.lora"):
        return LDM_PATCHED
    return UNKNOWN_FORGE


def is_forge() -> bool:
    return host_family() is not A1111


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
        self.family = host_family()
        self.forge = self.family is not A1111
        self.service = HyperLoRAService(self.config, free_memory=self._free_memory if self.forge else None)
        self.tags_off: str | None = None  # why <hyperlora> tags are off, when no adapter fits
        self.host = self._make_host()
        self.hooks = HostHooks(lora_dir=_lora_dir, lora_saved=self._lora_saved, gpu_lock=_gpu_lock,
                               tags_off=self.tags_off, loras_changed=self._loras_changed)
        self.publisher = self.service.publish_to(_lora_dir, self.hooks.hold_gpu, self._loras_changed)
        self.panel = Panel(self.service, self.hooks)
        script_callbacks.on_ui_settings(self.ui_settings)
        script_callbacks.on_before_ui(self.before_ui)
        script_callbacks.on_app_started(self.app_started)
        script_callbacks.on_infotext_pasted(self.infotext_pasted)
        script_callbacks.on_script_unloaded(self.unload)

    def _make_host(self) -> HostAdapter[Any] | None:
        """The adapter of this host's family; None (tags off, the reason logged and kept in
        ``tags_off``) when none fits or the built-in Lora extension is not loaded."""
        family = self.family
        try:
            if family is NEW_FORGE:
                from .forge import ForgeHost

                host: HostAdapter[Any] | None = ForgeHost(self.service)
            elif family is LDM_PATCHED:
                from .ldm_patched import LdmPatchedHost

                host = LdmPatchedHost(self.service)
            elif family is A1111:
                from .a1111 import A1111Host

                host = A1111Host(self.service)
            else:
                self.tags_off = f"found {family.name}, which this version does not support"
                host = None
        except ImportError as exc:
            self.tags_off = (f"found {family.name}, but its built-in Lora extension ({family.lora_extension}) "
                             f"is not loaded ({exc}); enable it in Extensions -> Installed and restart")
            host = None
        if host is None:
            log.error("HyperLoRA: <hyperlora> tags are off: %s. The panel still creates identities and saves "
                      "LoRA files.", self.tags_off)
        else:
            print(f"HyperLoRA {__version__}: {family.name} ({family.hosts}); <hyperlora> tags through "
                  f"{family.lora_extension} ({type(host).__name__})")
        return host

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
            onchange = self._publish_setting_changed if option.key == PUBLISH_KEY else None
            info = shared.OptionInfo(option.default, option.label, components[option.kind], option.args or None,
                                     onchange=onchange, section=SECTION)
            if option.info:
                info = info.info(option.info)
            if option.reload_ui:
                info = info.needs_reload_ui()
            shared.opts.add_option(option.key, info)

    def before_ui(self) -> None:
        from modules import extra_networks, ui_extra_networks

        from .pages import ExtraNetworksPageHyperLoRA

        if self.host is not None:
            self.extra_network = self.host.install()
        else:
            self.extra_network = ExtraNetworkTagsOff(self.tags_off or "no adapter")
            extra_networks.register_extra_network(self.extra_network)
        ui_extra_networks.register_page(ExtraNetworksPageHyperLoRA(self.panel))
        self.add_xyz_axes()

    def add_xyz_axes(self) -> None:
        """X/Y/Z plot axes; before the UI is built, which copies the axis list (``xyz_axes``)."""
        from modules import scripts

        from ..app.panel.xyz_axes import register

        try:
            register(scripts.scripts_data, self.panel.names, lambda: self.service.config.default_weight)
        except Exception:
            log.exception("HyperLoRA: adding the X/Y/Z plot axes failed")

    def app_started(self, demo: Any, app: FastAPI) -> None:
        from ..app.http.names_route import add_names_route

        self.publisher.start_publish_all()  # with the setting on: identities made while the WebUI was off
        add_names_route(app, self.panel.names, lambda: self.service.config.default_weight, HELP)  # autocomplete
        if not getattr(shared.cmd_opts, "api", False):
            return
        from ..app.http.api import make_router, parse_api_auth

        app.include_router(make_router(self.service, self.hooks, parse_api_auth(shared.cmd_opts.api_auth)))

    def infotext_pasted(self, infotext: str, params: dict) -> None:
        point_tags_at_renamed(params, self.service.identities)

    def generation_started(self, p: Processing) -> None:
        """From the Script's ``process``: drop whatever the last generation left active, so that
        nothing of it is re-applied when this one's LoRAs load (a checkpoint switch in between)."""
        if self.host is not None:
            self.host.reset()

    def unload(self) -> None:
        if self.host is not None:
            self.host.uninstall()

    def _lora_saved(self, path: Path) -> None:
        if self.host is not None:
            self.host.lora_saved(path)

    def _publish_setting_changed(self) -> None:
        """Settings -> keep identities as LoRA files: turned on, publish the existing ones (in the background,
        progress in the panel); turned off, the files stay (said in the console)."""
        if self.publisher.enabled:
            self.publisher.start_publish_all()
        else:
            print(f"HyperLoRA: identities are no longer kept as LoRA files; the files in {self.publisher.folder} "
                  "stay (delete the folder to remove them)")

    def _loras_changed(self) -> None:
        if self.host is not None:
            self.host.loras_changed()

    def _free_memory(self, nbytes: int) -> None:
        if self.host is not None:
            self.host.free_memory(nbytes)
