"""Fixtures of the host adapter's tests: one fake WebUI (``tests/hosts``) per test.

``a1111`` / ``forge`` / ``reforge`` / ``classic`` (``webui``: all four in turn; ``patcher_host``: the three
Forge hosts) put that host's folders first on ``sys.path``,
point its models folder at a per-test copy of the tiny real models (``tests/conftest.py``; the
identities folder is the test's own), and hand the test a ``WebUI`` that starts the host the way its
start-up does. Afterwards every module the host folders provided, and ``hyperlora_ext.webui.*``
(which binds host modules when imported), leave ``sys.modules``, and Forge's gradio patches are
undone, so the hosts never mix. A test fails if the host reported an exception (the hosts
only print those) that the test did not read with ``WebUI.reported()``.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

# What both hosts set before gradio is imported: no telemetry, no fetching of messages at import.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _gradio_on_this_huggingface_hub() -> None:
    """gradio 4.40 (Forge's pin) imports ``huggingface_hub.HfFolder``, which huggingface_hub 1.0
    removed; transformers 5 needs huggingface_hub >= 1 (Forge itself pins huggingface-hub 0.26.2
    and transformers 4.46.1). gradio uses it only to read a saved token for its OAuth login, which
    these tests never use: give it the one name, answering "no token"."""
    import huggingface_hub

    if not hasattr(huggingface_hub, "HfFolder"):
        class HfFolder:
            @staticmethod
            def get_token():
                return None

        huggingface_hub.HfFolder = HfFolder


_gradio_on_this_huggingface_hub()

from hyperlora_ext.model.locations import ENV_MODELS_DIR  # noqa: E402

HOSTS = Path(__file__).resolve().parents[1] / "hosts"
OUR_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "hyperlora.py"
# Each host's folders in sys.path order: its own, what its family shares, its Lora extension, then what the
# Lora extensions have alike.
FOLDERS = {"a1111": ("a1111", "a1111/extensions-builtin/Lora", "common/lora"),
           "forge": ("forge", "forge/extensions-builtin/sd_forge_lora", "forge_family/lora", "common/lora"),
           "reforge": ("reforge", "ldm_family", "reforge/extensions-builtin/Lora", "ldm_family/lora",
                       "forge_family/lora", "common/lora"),
           "classic": ("classic", "ldm_family", "classic/extensions-builtin/Lora", "ldm_family/lora",
                       "forge_family/lora", "common/lora", "classic/extensions-builtin/xyz")}
XYZ_GRID = {"classic": HOSTS / "classic" / "extensions-builtin" / "xyz" / "scripts" / "xyz_grid.py"}
XYZ_GRID_DEFAULT = HOSTS / "common" / "scripts" / "xyz_grid.py"
HOST_MODULES = {"modules", "modules_forge", "backend", "ldm_patched", "network", "networks", "network_lora",
                "extra_networks_lora", "ldm_networks", "lib_xyz"}
OURS = "hyperlora_ext.webui"
PATCHER_HOSTS = ("forge", "reforge", "classic")  # the Forge family: LoRAs as UNet patcher patches
LDM_PATCHED_HOSTS = ("reforge", "classic")


def _from_host(name: str) -> bool:
    return name.split(".")[0] in HOST_MODULES or name == OURS or name.startswith(OURS + ".")


def _forget_host_modules() -> None:
    for name in [n for n in sys.modules if _from_host(n)]:
        del sys.modules[name]
    import hyperlora_ext

    hyperlora_ext.__dict__.pop("webui", None)


def _models_folder(shared_models: Path, folder: Path) -> Path:
    """A WebUI models folder whose HyperLoRA files are the session's tiny models (linked) and whose
    identities folder and Lora folder are this test's own."""
    (folder / "hyper_lora").mkdir(parents=True)
    for sub in ("hyper_lora", "clip_vit", "clip_processor"):
        (folder / "hyper_lora" / sub).symlink_to(shared_models / "hyper_lora" / sub, target_is_directory=True)
    (folder / "insightface").symlink_to(shared_models / "insightface", target_is_directory=True)
    return folder


class WebUI:
    """One fake host, imported from its folder. ``extension()`` runs what loading the scripts does
    (the Lora extension's script, the X/Y/Z script, then ours), ``load_model`` what loading a
    checkpoint does, ``start()`` the UI start-up callbacks, ``generate`` one batch up to sampling."""

    def __init__(self, name: str, models: Path) -> None:
        self.name = name
        self.models = models
        self.lora_dir = models / "Lora"
        self.modules = importlib.import_module("modules")
        from modules import (
            errors,
            extra_networks,
            paths,
            processing,
            script_callbacks,
            scripts,
            sd_models,
            shared,
            ui_extra_networks,
        )

        self.errors, self.extra_networks, self.processing = errors, extra_networks, processing
        self.script_callbacks, self.scripts, self.sd_models, self.shared = script_callbacks, scripts, sd_models, shared
        self.ui_extra_networks = ui_extra_networks
        paths.models_path = str(models)
        shared.cmd_opts.lora_dir = str(self.lora_dir)
        self.networks = importlib.import_module("networks")
        self.extra_networks_lora = importlib.import_module("extra_networks_lora")
        self.ext = None

    @property
    def is_forge(self) -> bool:
        """Any Forge: LoRAs are UNet patcher patches on ``forge_objects``."""
        return self.name in PATCHER_HOSTS

    def reported(self) -> list[tuple[str, BaseException | None]]:
        """The exceptions the host caught and printed since the last call."""
        found = list(self.errors.reported)
        self.errors.reported.clear()
        return found

    def _lora_script(self) -> None:
        """The Lora extension's ``scripts/lora_script.py``: its extra network is registered before the UI
        is built (and, on A1111, layer names are assigned whenever a model loads)."""
        networks, extra_networks = self.networks, self.extra_networks

        def before_ui():
            networks.extra_network_lora = self.extra_networks_lora.ExtraNetworkLora()
            extra_networks.register_extra_network(networks.extra_network_lora)

        self.script_callbacks.on_before_ui(before_ui)
        if not self.is_forge:
            self.script_callbacks.on_model_loaded(networks.assign_network_names_to_compvis_modules)

    def extension(self):
        """Load the scripts: the built-in Lora extension's, the X/Y/Z plot's, then ours
        (``scripts/hyperlora.py``, which creates the ``Extension``)."""
        self._lora_script()
        self.scripts.load_scripts([str(XYZ_GRID.get(self.name, XYZ_GRID_DEFAULT)), str(OUR_SCRIPT)])
        self.ext = self.scripts.scripts_data[-1].module.extension
        return self.ext

    def load_model(self, unet_seed: int = 0):
        """A checkpoint load: the SDXL model object of this host around the tiny UNet."""
        from tiny_sdxl import tiny_unet

        unet = tiny_unet(unet_seed)
        if self.name == "forge":
            from backend.diffusion_engine.base import sdxl

            model = sdxl(unet)
        elif self.name in LDM_PATCHED_HOSTS:
            from modules_forge.forge_loader import sdxl

            model = sdxl(unet)
        else:
            model = A1111SdxlModel(unet)
        self.sd_models.model_data.set_sd_model(model)
        self.script_callbacks.model_loaded_callback(model)
        return model

    def start(self, api: bool = False):
        """Scripts, a model, then the UI start-up: settings, before-UI, app started (a FastAPI app)."""
        from fastapi import FastAPI

        ext = self.ext or self.extension()
        if self.sd_models.model_data.get_sd_model() is None or not getattr(self.shared.sd_model, "is_sdxl", False):
            self.load_model()
        self.shared.cmd_opts.api = api
        self.script_callbacks.ui_settings_callback()
        self.script_callbacks.before_ui_callback()
        self.app = FastAPI()
        self.script_callbacks.app_started_callback(None, self.app)
        return ext

    def start_with_alice(self, *, saved: str | None = "alice_file"):
        """``start()``, then create the identity ``alice`` from ``people.ALICE`` and, unless ``saved`` is
        None, save it as the LoRA file ``<saved>.safetensors`` in the Lora folder (Base-LoRA weight 0)."""
        from people import ALICE

        ext = self.start()
        ext.service.create_identity(ALICE, "alice", "tiny_id", image_names=["a1.png", "a2.png"])
        if saved:
            assert "Saved" in ext.panel.save_lora("alice", saved, 0.0, False)
        return ext

    def generate(self, prompt: str, sample: bool = True):
        """One batch of ``process_images`` up to (and, with ``sample``, including) loading the LoRA
        weights into the UNet, without scripts (as another extension's inner pass runs it); returns ``p``."""
        p = self.processing.StableDiffusionProcessing(prompt=prompt)
        self.processing.activate_extra_networks(p)
        if sample:
            self.processing.sample(self.shared.sd_model)
        return p

    def unet_weights(self) -> dict:
        """A copy of the UNet's weights as the last sampling left them."""
        model = self.shared.sd_model
        unet = model.forge_objects.unet.model if self.is_forge else model.model
        return {k: v.clone() for k, v in unet.state_dict().items()}

    def process_images(self, prompt: str, **fields):
        """A whole generation with the always-on scripts (ours with no arguments, as an API request without
        ``alwayson_scripts``): their ``process``, each batch's activation and sampling, ``deactivate``, their
        ``postprocess``; returns ``p``."""
        p = self.processing.StableDiffusionProcessing(prompt=prompt, scripts=self.scripts.ScriptRunner(), **fields)
        return self.processing.process_images(p)


class A1111SdxlModel:
    """What A1111's ``shared.sd_model`` is for SDXL, as far as the Lora extension reads it: ``is_sdxl``,
    ``model`` (the UNet wrapper) and ``conditioner.embedders`` (no text encoders here)."""

    def __init__(self, unet) -> None:
        self.is_sdxl = True
        self.model = unet
        self.conditioner = type("Conditioner", (), {"embedders": []})()


@pytest.fixture
def host_models(models_dir, tmp_path) -> Path:
    return _models_folder(Path(models_dir), tmp_path / "webui-models")


def _webui(name: str, host_models: Path, monkeypatch) -> WebUI:
    monkeypatch.delenv(ENV_MODELS_DIR, raising=False)
    monkeypatch.syspath_prepend(str(HOSTS))  # tiny_sdxl
    _forget_host_modules()
    for folder in reversed(FOLDERS[name]):
        monkeypatch.syspath_prepend(str(HOSTS / folder))
    webui = WebUI(name, host_models)
    if webui.name == "forge":
        importlib.import_module("modules.gradio_extensions")  # Forge's start-up applies its gradio shims
    return webui


def _teardown(webui: WebUI) -> None:
    leftover = webui.reported()
    if "modules.gradio_extensions" in sys.modules:
        sys.modules["modules.gradio_extensions"].undo()
    _forget_host_modules()
    assert not leftover, f"the host caught and printed exceptions: {leftover}"


def _host_fixture(name: str):
    """The fixture of one fake host: its ``WebUI``, checked and forgotten afterwards."""
    @pytest.fixture
    def fixture(host_models, monkeypatch):
        yield from _running(name, host_models, monkeypatch)
    return fixture


def _running(name: str, host_models: Path, monkeypatch):
    webui = _webui(name, host_models, monkeypatch)
    yield webui
    _teardown(webui)


a1111 = _host_fixture("a1111")
forge = _host_fixture("forge")
reforge = _host_fixture("reforge")
classic = _host_fixture("classic")


@pytest.fixture(params=PATCHER_HOSTS)
def patcher_host(request, host_models, monkeypatch):
    """Each Forge host in turn (LoRAs as UNet patcher patches)."""
    yield from _running(request.param, host_models, monkeypatch)


@pytest.fixture(params=["a1111", *PATCHER_HOSTS])
def webui(request, host_models, monkeypatch):
    """Each fake host in turn."""
    yield from _running(request.param, host_models, monkeypatch)
