"""Fixtures for the end-to-end suite: the HyperLoRA model pack and a running WebUI per host.

Skipped unless a WebUI checkout is given (see webui_server.py for the environment variables).
"""

from __future__ import annotations

import pytest
import torch
from builders import full_sdxl_modules, make_checkpoint, make_clip
from e2e_helpers import VARIANT
from face_pack import build_face_pack
from webui_server import HOSTS, WebUI, require

from hyperlora_ext.model.locations import ModelLocations

CLIP_DIM = 48


@pytest.fixture(scope="session")
def e2e_models(tmp_path_factory):
    """host -> a models folder whose HyperLoRA checkpoint has the real SDXL attention modules and
    shapes (140 modules, 560 layers) with a small hyper dim and resampler, plus tiny CLIP and face
    pack. One folder per host, so each host starts with no identities."""
    built = {}

    def models_for(host: str):
        if host not in built:
            root = tmp_path_factory.mktemp(f"e2e-{host}") / "models"
            locs = ModelLocations.under(root)
            make_clip(locs.clip_vit, locs.clip_processor, hidden=CLIP_DIM)
            build_face_pack(locs.antelopev2)
            make_checkpoint(locs.hyper_lora / VARIANT, modules=full_sdxl_modules(), hyper_dim=2, rank=4,
                            clip_dim=CLIP_DIM, base=True, seed=7, dtype=torch.float16)
            built[host] = root
        return built[host]

    return models_for


@pytest.fixture(scope="module", params=list(HOSTS))
def webui(request, tmp_path_factory):
    host = request.param
    require(host)
    settings = getattr(request.module, "WEBUI_SETTINGS", None)  # a test module's extra WebUI settings
    server = WebUI(host, tmp_path_factory.mktemp(f"{host}-data"), request.getfixturevalue("e2e_models")(host),
                   settings=settings)
    server.start()
    print(f"\n[e2e] {host} answered after {server.startup_seconds:.0f} s")
    yield server
    server.stop()
