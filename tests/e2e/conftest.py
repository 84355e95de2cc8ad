"""Fixtures for the end-to-end suite: the HyperLoRA model pack and a running WebUI per host.

Skipped unless a WebUI checkout is given (see webui_server.py for the environment variables).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from builders import CLIP_DIM, full_sdxl_modules, make_checkpoint, make_clip
from e2e_helpers import TIMINGS, VARIANT
from face_pack import build_face_pack
from webui_server import HOSTS, WebUI, require

from hyperlora_ext.model.locations import ModelLocations

E2E_DIR = Path(__file__).resolve().parent


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
    args = getattr(request.module, "WEBUI_ARGS", {}).get(host)  # ... and command-line arguments per host
    server = WebUI(host, tmp_path_factory.mktemp(f"{host}-data"), request.getfixturevalue("e2e_models")(host),
                   settings=settings, args=args)
    server.start()
    print(f"\n[e2e] {host} answered after {server.startup_seconds:.0f} s")
    TIMINGS.setdefault(f"{host} startup", []).append(server.startup_seconds)
    yield server
    server.stop()


def pytest_collection_modifyitems(items) -> None:
    """Every test here is marked ``e2e`` (``-m e2e`` / ``-m "not e2e"`` select on it)."""
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def pytest_terminal_summary(terminalreporter) -> None:
    """The measured timings of the run, per host and request kind (not assertions on speed)."""
    for key, values in sorted(TIMINGS.items()):
        terminalreporter.write_line(f"[e2e] {key}: n={len(values)} mean {sum(values) / len(values):.1f} s")
