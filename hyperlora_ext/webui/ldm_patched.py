"""The ``ldm_patched`` adapter: reForge (``main``, ``gradio4_main``), Forge Classic, Forge before 2.0.

These hosts apply ``<lora:>`` tags in the Lora extension (``extensions-builtin/Lora``) with the
ComfyUI-derived ``ldm_patched.modules.lora``: ``load_lora(sd, model_lora_keys_unet(unet.model, {}))``,
then ``unet.clone().add_patches(patches, strength)``. One LoRA of ours goes the same way, so the tag
applies exactly what the host applies for the same LoRA saved as a file; ``PatcherHost`` keeps the
patched clone on ``forge_objects_after_applying_lora``. Differences inside the family, handled by
capability: ``load_lora`` returns the patches (reForge) or ``(patches, unused keys)`` (Classic,
old Forge); reForge converts the dict first (``lora_convert.convert_lora``); ``add_patches`` takes
no identifier (reForge gives each clone a new ``patches_uuid``, Classic tells models apart by
their patcher object). Only importable inside an ``ldm_patched`` host.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Callable

import networks  # the built-in Lora extension (extensions-builtin/Lora)
from ldm_patched.modules import lora as ldm_lora
from ldm_patched.modules import model_management

from ..app.core.service import HyperLoRAService, LoRAWeights
from .patcher_host import PatcherHost, add_host_patches, host_patches

log = logging.getLogger(__name__)


def _convert_lora() -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """reForge's ``lora_convert.convert_lora`` (what ``load_lora_for_models`` applies first), or None."""
    try:
        return importlib.import_module("ldm_patched.modules.lora_convert").convert_lora
    except (ImportError, AttributeError):
        return None


class LdmPatchedHost(PatcherHost):
    """Our LoRAs as ``ldm_patched`` UNet patcher patches."""

    def __init__(self, service: HyperLoRAService) -> None:
        super().__init__(service, networks)
        self._convert = _convert_lora()

    def add_lora(self, unet: Any, weights: LoRAWeights, strength: float) -> None:
        sd = dict(weights.tensors)
        if self._convert is not None:
            sd = self._convert(sd)
        patches = host_patches(ldm_lora.load_lora, ldm_lora.model_lora_keys_unet(unet.model, {}), sd)
        add_host_patches(unet, patches, strength, f"hyperlora:{weights.key}")

    def free_memory(self, nbytes: int) -> None:
        """Ask the ``ldm_patched`` memory manager for room before the hypernetwork goes to the GPU."""
        model_management.free_memory(nbytes, model_management.get_torch_device())
