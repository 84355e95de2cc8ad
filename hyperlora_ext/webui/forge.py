"""The new-Forge adapter (``backend.patcher.lora``): lllyasviel's Forge 2, reForge2, Forge Neo.

One LoRA becomes patches with the host's own converter, the way its Lora extension adds a file:
``load_lora(sd, model_lora_keys_unet(unet.model, {}))``, then
``add_patches(filename="hyperlora:<name>_<content hash>...", patches=..., strength_patch=w)``; the
patch identifier changes whenever the weights change, or Forge would keep stale weights. Later Forge
Neo versions rewrote the patcher ComfyUI-style (``load_lora`` returning only the patches,
``add_patches`` without ``filename``): ``host_patches`` and ``add_host_patches`` take either.
``PatcherHost`` keeps them on ``forge_objects_after_applying_lora``. Activation lives in the
ExtraNetwork, which the host calls in ADetailer passes too (ADetailer filters script hooks, not
extra networks). Only importable inside a new Forge.
"""

from __future__ import annotations

import logging
from typing import Any

import networks  # the built-in Lora extension (sd_forge_lora)
from backend import memory_management
from backend.patcher.lora import load_lora, model_lora_keys_unet

from ..app.core.service import HyperLoRAService, LoRAWeights
from .patcher_host import PatcherHost, add_host_patches, host_patches

log = logging.getLogger(__name__)


class ForgeHost(PatcherHost):
    """Our LoRAs as ``backend`` UNet patcher patches."""

    def __init__(self, service: HyperLoRAService) -> None:
        super().__init__(service, networks)

    def add_lora(self, unet: Any, weights: LoRAWeights, strength: float) -> None:
        patches = host_patches(load_lora, model_lora_keys_unet(unet.model, {}), dict(weights.tensors))
        add_host_patches(unet, patches, strength, f"hyperlora:{weights.key}")

    def free_memory(self, nbytes: int) -> None:
        """Ask Forge's memory manager for room before the hypernetwork goes to the GPU."""
        memory_management.free_memory(nbytes, memory_management.get_torch_device())
