"""Fake of ``modules_forge/forge_loader.py`` of the ``ldm_patched`` hosts (reForge main@3b56b268 L181, L433-553;
Forge Classic@1f95d717 L39-50, L301): ``ForgeObjects`` (unet, clip, vae, clipvision; ``shallow_copy``
copies the references) and what ``load_model_for_a1111`` sets on the A1111 model object it returns:
``forge_objects``, ``forge_objects_original``, ``forge_objects_after_applying_lora`` (three shallow
copies) and ``current_lora_hash = str([])``. ``sdxl`` builds such a model around a UNet module with
the host's ``UnetPatcher``. Left out: text encoders, the VAE, the checkpoint's state dict."""

import torch
from modules.forge_objects_common import ForgeObjects

from modules_forge.unet_patcher import UnetPatcher


class SdxlModel:
    """The A1111 ``DiffusionEngine`` as far as the Lora extension and extensions read it here."""

    def __init__(self, unet):
        self.is_sdxl = True
        self.is_sd1 = self.is_sd2 = self.is_sd3 = False
        self.forge_objects = ForgeObjects(unet=unet, clip=None, vae=None, clipvision=None)
        self.forge_objects_original = self.forge_objects.shallow_copy()
        self.forge_objects_after_applying_lora = self.forge_objects.shallow_copy()
        self.current_lora_hash = str([])


def sdxl(unet_model):
    return SdxlModel(UnetPatcher(unet_model, load_device=torch.device("cpu"), offload_device=torch.device("cpu")))
