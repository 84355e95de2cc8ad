"""The WebUIs the e2e suite runs: each host's checkout variable, whether it is given, and its interpreter.

``a1111`` (AUTOMATIC1111), ``forge`` (lllyasviel's Forge 2), ``reforge`` (reForge ``main``), ``classic``
(Forge Classic) and ``reforge2`` (reForge ``newmain_newforge``, on Forge 2's code); all but A1111 are the Forge
family (``FORGE_HOSTS``), started alike.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

HOSTS = {"a1111": "HYPERLORA_E2E_A1111", "forge": "HYPERLORA_E2E_FORGE", "reforge": "HYPERLORA_E2E_REFORGE",
         "classic": "HYPERLORA_E2E_CLASSIC", "reforge2": "HYPERLORA_E2E_REFORGE2"}
FORGE_HOSTS = ("forge", "reforge", "classic", "reforge2")
NEW_FORGE_HOSTS = ("forge", "reforge2")  # Forge 2's backend/
LDM_PATCHED_HOSTS = ("reforge", "classic")  # Forge on ldm_patched (no backend/)
# Hosts whose HTTP API returns ``processed.images`` only, not ControlNet's detected maps (``processed.extra_images``;
# reForge modules/api/api.py). There a unit is proven to have run by its own log line instead (see
# ``controlnet_patched``).
API_WITHOUT_DETECTED_MAPS = ("reforge",)


def bf16_unet(hosts: tuple[str, ...]) -> dict[str, list[str]]:
    """A test module's ``WEBUI_ARGS`` that start ``hosts`` with the UNet in bf16 (``--unet-in-bf16``): half the
    memory of ``--always-cpu``'s fp32 UNet and of its LoRA backups, for the modules that would not fit in a
    24 GB rig otherwise (native bf16 CPUs, as the rigs have)."""
    return {host: ["--unet-in-bf16"] for host in hosts}


def controlnet_patched(host_log: str) -> list[str]:
    """The ControlNet units that patched the UNet, by preprocessor name, from the Forge ControlNet's log line
    ``ControlNet Method NAME patched.`` (sd_forge_controlnet/scripts/controlnet.py), in order."""
    return re.findall(r"ControlNet Method (.+?) patched\.", host_log)


def checkout(host: str) -> Path | None:
    value = os.environ.get(HOSTS[host])
    return Path(value) if value else None


def require(host: str, controlnet: bool = False) -> None:
    """Skip the test unless ``host``'s checkout is given (and, for ``controlnet`` on A1111, sd-webui-controlnet)."""
    if checkout(host) is None:
        pytest.skip(f"set {HOSTS[host]} to a {host} checkout to run the end-to-end suite")
    if controlnet and host == "a1111" and not os.environ.get("HYPERLORA_E2E_CONTROLNET"):
        pytest.skip("set HYPERLORA_E2E_CONTROLNET to a sd-webui-controlnet checkout")


def interpreter(host: str, root: Path) -> str:
    given = os.environ.get(f"{HOSTS[host]}_PYTHON")
    if given:
        return given
    venv = root / "venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable
