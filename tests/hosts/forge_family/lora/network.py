"""Fake of the Lora extension's ``network.py`` in the Forge hosts (Forge@dfdcbab ``sd_forge_lora``; reForge
main@3b56b268 and Forge Classic@1f95d717 ``extensions-builtin/Lora``): ``NetworkOnDisk`` (a file in the Lora
folder: metadata, alias from ``ss_output_name``, hash read lazily) and ``Network`` (a name and multipliers; no
per-layer modules: LoRAs become UNet patcher patches). SDXL is recognised by ``ss_base_model_version``
(all three) or ``modelspec.architecture`` (Forge only). Left out: the SD-version detection's other
architectures."""

import enum
import hashlib
import os

from modules import sd_models


class SdVersion(enum.Enum):
    Unknown = 1
    SD1 = 2
    SD2 = 3
    SDXL = 4
    Flux = 6


class NetworkOnDisk:
    def __init__(self, name, filename):
        self.name = name
        self.filename = filename
        self.is_safetensors = os.path.splitext(filename)[1].lower() == ".safetensors"
        self.metadata = sd_models.read_metadata_from_safetensors(filename) if self.is_safetensors else {}
        self.alias = self.metadata.get("ss_output_name", self.name)
        self.hash = None
        self.shorthash = None
        self.set_hash(self.metadata.get("sshs_model_hash") or "")
        self.sd_version = SdVersion.SDXL if (
            self.metadata.get("modelspec.architecture") == "stable-diffusion-xl-v1-base/lora"
            or str(self.metadata.get("ss_base_model_version", "")).startswith("sdxl_")) else SdVersion.Unknown

    def set_hash(self, v):
        self.hash = v
        self.shorthash = self.hash[0:12]
        if self.shorthash:
            import networks

            networks.available_network_hash_lookup[self.shorthash] = self

    def read_hash(self):
        if not self.hash:  # the host hashes with the "addnet" method and caches it
            with open(self.filename, "rb") as f:
                self.set_hash(hashlib.sha256(f.read()).hexdigest())


class Network:  # LoraModule
    def __init__(self, name, network_on_disk: NetworkOnDisk):
        self.name = name
        self.network_on_disk = network_on_disk
        self.te_multiplier = 1.0
        self.unet_multiplier = 1.0
        self.dyn_dim = None
        self.modules = {}
        self.bundle_embeddings = {}
        self.mtime = None
        self.mentioned_name = None
