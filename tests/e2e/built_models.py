"""The random models the e2e suite builds once and caches: the SDXL checkpoint, a "mid" SDXL ControlNet and the
InstantID IP-Adapter (see ``sdxl_checkpoint.py``, ``controlnet_model.py``, ``instantid_model.py``), each in its
own interpreter's environment. Variables: see ``webui_server.py``."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from e2e_hosts import checkout, interpreter

SDXL_CONFIG = "repositories/generative-models/configs/inference/sd_xl_base.yaml"


def _cache() -> Path:
    return Path(os.environ.get("HYPERLORA_E2E_CACHE", Path.home() / ".cache" / "hyperlora-e2e"))


def _built_once(variable: str, default_name: str, command: Callable[[Path], list[str]]) -> Path:
    """$``variable``, else ``default_name`` in the cache; built with ``command(out)`` (another interpreter's
    environment: no PYTHONPATH) when the file is missing."""
    given = os.environ.get(variable)
    out = Path(given) if given else _cache() / default_name
    if not out.exists():
        subprocess.run(command(out), check=True, env={**os.environ, "PYTHONPATH": ""})
    return out


def sdxl_checkpoint() -> Path:
    """The random SDXL checkpoint: $HYPERLORA_E2E_SDXL, else built once with the A1111 checkout."""
    given = os.environ.get("HYPERLORA_E2E_SDXL")
    if given:
        return Path(given)
    out = _cache() / "sdxl-random.safetensors"
    if out.exists():
        return out
    root = checkout("a1111")
    if root is None:
        raise RuntimeError("set HYPERLORA_E2E_SDXL, or HYPERLORA_E2E_A1111 to build the SDXL checkpoint")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "repositories/generative-models")])}
    subprocess.run([interpreter("a1111", root), str(Path(__file__).with_name("sdxl_checkpoint.py")),
                    str(root / SDXL_CONFIG), str(out)], check=True, env=env, cwd=root)
    return out


def _diffusers_python() -> str:
    given = os.environ.get("HYPERLORA_E2E_DIFFUSERS_PYTHON")
    if given:
        return given
    if importlib.util.find_spec("diffusers") is not None:
        return sys.executable
    forge = checkout("forge")
    if forge is not None and (forge / "venv" / "bin" / "python").exists():
        return str(forge / "venv" / "bin" / "python")
    raise RuntimeError("building the ControlNet needs diffusers: set HYPERLORA_E2E_DIFFUSERS_PYTHON")


def controlnet_model() -> Path:
    """The random SDXL ControlNet (built once, beside the SDXL checkpoint it fits, see controlnet_model.py)."""
    return _built_once("HYPERLORA_E2E_CONTROLNET_MODEL", "sdxl-controlnet-mid-random.safetensors",
                       lambda out: [_diffusers_python(), str(Path(__file__).with_name("controlnet_model.py")),
                                    str(sdxl_checkpoint()), str(out)])


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX). A1111 with fp8 storage on the CPU runs
    every UNet step under ``torch.autocast("cpu", torch.bfloat16)`` (modules/devices.py ``autocast``); without
    these instructions a bf16 convolution is about 200x slower than fp32 (30 s against 0.14 s for one
    256-channel 3x3 convolution at 80x80 on a 2-core AMD EPYC), so there the suite runs in plain fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def instantid_model() -> Path:
    """The random InstantID IP-Adapter (built once with this interpreter's torch, see instantid_model.py)."""
    return _built_once("HYPERLORA_E2E_INSTANTID_MODEL", "ip-adapter_instant_id_sdxl-random.safetensors",
                       lambda out: [sys.executable, str(Path(__file__).with_name("instantid_model.py")), str(out)])


# The names the WebUI's ControlNet folder shows them under: both hosts recognise InstantID by "instant_id" in the
# file name (sd-webui-controlnet: the IP-Adapter in ipadapter_model.py, the ControlNet in controlnet_model_guess.py).
INSTANTID_IP_ADAPTER = "ip-adapter_instant_id_sdxl.safetensors"
INSTANTID_CONTROLNET = "control_instant_id_sdxl.safetensors"


