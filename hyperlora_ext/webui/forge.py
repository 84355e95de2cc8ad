"""Forge adapter: the ``hyperlora`` ExtraNetwork on Forge's UNet patcher.

Forge applies ``<lora:>`` tags in the Lora extension's ``networks.load_networks``, which
builds ``sd_model.forge_objects_after_applying_lora`` (a UNet patcher clone with LoRA
patches); before every sampling (first pass, hires pass, ADetailer's inner passes) Forge
copies ``forge_objects`` from it. We put our patches on a clone of that UNet:
``load_lora(sd, model_lora_keys_unet(unet.model, {}))`` (Forge's own converter),
``add_patches(filename="hyperlora:<name>_<content hash>...", strength_patch=w)``. The clone
remembers the UNet it was made from, so a new set of tags starts again from the LoRA-only
UNet and no stale patch survives; ``load_networks`` is wrapped so Forge rebuilding its own
LoRAs (tags in any order) gets ours re-applied. Nothing is written into the weights here:
Forge patches them when it loads the model and restores them from its backups.

Activation lives in the ExtraNetwork, which Forge calls in ADetailer passes too (ADetailer
filters script hooks such as ``process_before_every_sampling``, not extra networks).
Only importable inside Forge.
"""

from __future__ import annotations

import logging

from backend import memory_management
from backend.patcher.lora import load_lora, model_lora_keys_unet
from modules import sd_models

from ..app.activation import resolve_params
from ..app.service import HyperLoRAService, LoRAWeights
from .extra_network import HostAdapter

log = logging.getLogger(__name__)


class ForgeHost(HostAdapter):
    """Keeps our patches on ``forge_objects_after_applying_lora.unet``."""

    def __init__(self, service: HyperLoRAService) -> None:
        super().__init__(service)
        self.active: list[tuple[float, LoRAWeights]] = []

    @property
    def key(self) -> tuple:
        return tuple((weights.key, weight) for weight, weights in self.active)

    def sync(self) -> None:
        """Make ``forge_objects_after_applying_lora.unet`` carry exactly the active HyperLoRAs."""
        sd_model = sd_models.model_data.get_sd_model()
        after = getattr(sd_model, "forge_objects_after_applying_lora", None)
        if after is None:
            return
        unet = after.unet
        key = self.key
        if getattr(unet, "hyperlora_key", ()) == key:
            return
        base = getattr(unet, "hyperlora_base", unet)
        new = base
        if key:
            new = base.clone()
            unet_keys = model_lora_keys_unet(new.model, {})
            for weight, weights in self.active:
                lora_patches, unmatched = load_lora(dict(weights.tensors), unet_keys)
                if unmatched:
                    raise RuntimeError(f"{len(unmatched)} HyperLoRA keys have no match in this UNet "
                                       f"(e.g. {next(iter(unmatched))}); is it an SDXL model?")
                new.add_patches(filename=f"hyperlora:{weights.key}", patches=lora_patches, strength_patch=weight)
            new.hyperlora_base = base
            new.hyperlora_key = key
        updated = after.shallow_copy()
        updated.unet = new
        sd_model.forge_objects_after_applying_lora = updated

    def activate(self, p, params_list) -> None:
        sd_model = sd_models.model_data.get_sd_model()
        is_sdxl = bool(getattr(sd_model, "is_sdxl", False))
        resolution = resolve_params(self.service, p, params_list, is_sdxl)
        self.active = [(req.weight, weights) for req, weights in resolution.weights]
        self.sync()

    def free_memory(self, nbytes: int) -> None:
        """Ask Forge's memory manager for room before the hypernetwork goes to the GPU."""
        device = memory_management.get_torch_device()
        memory_management.free_memory(nbytes, device)
