"""What the two Forge-family adapters share: our LoRAs as patches on a clone of the UNet patcher.

On every Forge (new Forge's ``backend`` and the older ``ldm_patched`` alike) the Lora extension's
``networks.load_networks`` builds ``sd_model.forge_objects_after_applying_lora`` (UNet patcher
clones with the user's LoRA patches), and before every sampling (first pass, hires pass, each
ADetailer pass) ``processing.py`` copies ``forge_objects`` from it. ``sync`` puts a clone of that
UNet carrying our patches there; the clone remembers the UNet it was made from
(``hyperlora_base``) and the set it carries (``hyperlora_key``), so a new set of tags starts
again from the user's LoRAs and no stale patch survives. Nothing is written into the weights
here: the host patches them when it loads the model and restores them from its backups.
Subclasses only turn one LoRA into patches with the host's own converter (``add_lora``).
Only importable inside a WebUI.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Collection, Sequence

import torch
from modules import sd_models

from ..app.core.service import LoRAWeights
from ..app.generation.activation import resolve_params
from ..app.generation.processing import ExtraNetworkParams, Processing
from ..lora import group_by_layer
from .extra_network import HostAdapter


class PatcherHost(HostAdapter[tuple[float, LoRAWeights]]):
    """Keeps our patches on ``forge_objects_after_applying_lora.unet``; ``active``: (strength, weights) of each
    HyperLoRA, in tag order."""

    def add_lora(self, unet: Any, weights: LoRAWeights, strength: float) -> None:
        """Add ``weights`` to the UNet patcher ``unet`` (a fresh clone) at ``strength``, exactly as the
        host's Lora extension would add the same LoRA file; raise ``RuntimeError`` if its layers
        do not match this UNet."""
        raise NotImplementedError

    def current_model(self) -> Any:
        return sd_models.model_data.get_sd_model()

    @property
    def key(self) -> tuple:
        return tuple((weights.key, strength) for strength, weights in self.active)

    def sync(self) -> None:
        """Make ``forge_objects_after_applying_lora.unet`` carry exactly the active HyperLoRAs."""
        sd_model = self.current_model()
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
            for strength, weights in self.active:
                self.add_lora(new, weights, strength)
            new.hyperlora_base = base
            new.hyperlora_key = key
        updated = after.shallow_copy()
        updated.unet = new
        sd_model.forge_objects_after_applying_lora = updated

    def activate(self, p: Processing, params_list: Sequence[ExtraNetworkParams]) -> None:
        is_sdxl = bool(getattr(self.current_model(), "is_sdxl", False))
        resolution = resolve_params(self.service, p, params_list, is_sdxl)
        self.active = [(req.weight, weights) for req, weights in resolution.weights]
        self.bind()
        self.sync()


def unmatched_error(unmatched: Collection[str]) -> RuntimeError:
    """The error for LoRA keys (or layers) that the loaded UNet does not have."""
    example = next(iter(unmatched), "?")
    return RuntimeError(f"{len(unmatched)} HyperLoRA keys have no match in this UNet (e.g. {example}); "
                        "is it an SDXL model?")


def host_patches(load_lora: Callable, keys: dict, sd: dict[str, torch.Tensor]) -> dict:
    """The host's ``load_lora(sd, keys)`` for a kohya dict whose every layer is in ``keys`` (else
    ``RuntimeError``). It returns the patches (reForge, ComfyUI) or ``(patches, unused keys)`` (Forge,
    Forge Classic)."""
    missing = [layer for layer in group_by_layer(sd) if layer not in keys]
    if missing:
        raise unmatched_error(missing)
    loaded = load_lora(sd, keys)
    return loaded[0] if isinstance(loaded, tuple) else loaded


def add_host_patches(unet: Any, patches: dict, strength: float, identifier: str) -> None:
    """``unet.add_patches``: with ``filename=identifier`` where the host names patch sets (Forge 2), else
    positionally (``ldm_patched``, ComfyUI-style patchers); ``RuntimeError`` if it did not take them all."""
    if "filename" in inspect.signature(unet.add_patches).parameters:
        taken = unet.add_patches(filename=identifier, patches=patches, strength_patch=strength)
    else:
        taken = unet.add_patches(patches, strength_patch=strength)
    if taken is not None and len(taken) != len(patches):
        raise unmatched_error([k for k in patches if k not in set(taken)])
