"""Fake of Forge@dfdcbab ``backend/diffusion_engine/base.py``: ``ForgeObjects`` (unet, clip, vae,
clipvision; ``shallow_copy`` copies the references) and ``ForgeDiffusionEngine``, the loaded
model: ``forge_objects`` (what sampling uses), ``forge_objects_original`` (as loaded),
``forge_objects_after_applying_lora`` (the Lora extension's result, which every sampling pass
copies) and ``current_lora_hash``. ``sdxl`` builds one the way ``diffusion_engine/sdxl.py``
does, around a UNet module (``is_sdxl`` set; no text encoders or VAE)."""

import torch
from modules.forge_objects_common import ForgeObjects

from backend.patcher.unet import UnetPatcher


class ForgeDiffusionEngine:
    def __init__(self):
        self.forge_objects = None
        self.forge_objects_original = None
        self.forge_objects_after_applying_lora = None
        self.current_lora_hash = str([])
        self.is_sd1 = self.is_sd2 = self.is_sdxl = self.is_sd3 = False


def sdxl(unet_model):
    """A ``ForgeDiffusionEngine`` like ``StableDiffusionXL.__init__`` makes one: ``unet_model`` (a
    module with ``diffusion_model``) in a ``UnetPatcher``, the three ``forge_objects`` copies."""
    engine = ForgeDiffusionEngine()
    unet_model.storage_dtype = next(unet_model.parameters()).dtype
    unet = UnetPatcher(unet_model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))
    engine.forge_objects = ForgeObjects(unet=unet, clip=None, vae=None, clipvision=None)
    engine.forge_objects_original = engine.forge_objects.shallow_copy()
    engine.forge_objects_after_applying_lora = engine.forge_objects.shallow_copy()
    engine.is_sdxl = True
    return engine
