"""Regional Prompter (hako-mikan/sd-webui-regional-prompter, tested at be623452) in the e2e tests: a two-column
txt2img in latent mode, and the per-region LoRA weights it prints with debug output on."""

from __future__ import annotations

import ast
import os
import re

import numpy as np
import pytest
from e2e_helpers import generate


def require_regional_prompter(webui) -> None:
    """Skip unless Regional Prompter is linked in and loaded on this host. It does not load on Forge Classic
    1f95d717 (its rp.py reads ``shared.batch_cond_uncond``, which Classic removed): the skip names its error."""
    if not os.environ.get("HYPERLORA_E2E_REGIONAL_PROMPTER"):
        pytest.skip("set HYPERLORA_E2E_REGIONAL_PROMPTER to a Regional Prompter checkout")
    failed = re.search(r"Error loading script: rp\.py\n(?:[ \t].*\n)*?[ \t]*(\w+Error: .*)", webui.log_text())
    if failed:
        pytest.skip(f"Regional Prompter does not load on {webui.host}: {failed.group(1)}")


def regional(webui, prompt: str, width: int = 512, height: int = 256) -> tuple[np.ndarray, str, str]:
    """txt2img with Regional Prompter: two columns (ADDCOL), latent mode, LoRAs only in their regions
    (LoRA text encoder / U-Net weights outside the regions 0), debug output on: (image, infotext, the
    WebUI's log lines of this request)."""
    args = [True, True, "Matrix", "Columns", "Mask", "Prompt", "1,1", "", False, False, False, "Latent", False,
            "0", "0", "0", "", "0", "0", False]
    start = webui.log_mark()
    image, info = generate(webui, prompt, width=width, height=height,
                           alwayson_scripts={"Regional Prompter": {"args": args}})
    return image, info["infotexts"][0], webui.log_since(start)


def unet_regions(log: str) -> list[dict]:
    """Regional Prompter's per-region U-Net LoRA weights (its debug line ``LoRA regioner : U list [...]``):
    one dict per region, then the weights outside the regions."""
    found = re.findall(r"LoRA regioner : U list (\[.*\])", log)
    assert found, "Regional Prompter printed no LoRA regions (is it in latent mode, with debug on?)"
    return ast.literal_eval(found[-1])


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())
