"""Not a host module: ``ForgeObjects`` (unet, clip, vae, clipvision; ``shallow_copy`` copies the references),
the same class in Forge@dfdcbab (``backend/diffusion_engine/base.py``) and the ``ldm_patched`` hosts
(``modules_forge/forge_loader.py``); each host's fake module re-exports it under its own path."""


class ForgeObjects:
    def __init__(self, unet, clip, vae, clipvision):
        self.unet = unet
        self.clip = clip
        self.vae = vae
        self.clipvision = clipvision

    def shallow_copy(self):
        return ForgeObjects(self.unet, self.clip, self.vae, self.clipvision)
