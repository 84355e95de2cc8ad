"""Fake of A1111 v1.10.1@82a973c ``extensions-builtin/Lora/network.py``: ``NetworkWeights`` (one layer's
tensors by part name: ``lora_up.weight``, ``lora_down.weight``, ``alpha``), ``SdVersion``,
``NetworkOnDisk`` (a file in the Lora folder: metadata, alias from ``ss_output_name``, hash read
lazily), ``Network`` (name, multipliers, ``dyn_dim``, ``modules`` by layer name) and
``NetworkModule`` (scale ``alpha / dim``, multiplier by UNet or text encoder, ``finalize_updown``).
Left out: DoRA, biases and the other module shapes (MHA, QKV, norms, conv)."""

from __future__ import annotations

import enum
import hashlib
import os
from collections import namedtuple

from modules import sd_models, shared

NetworkWeights = namedtuple("NetworkWeights", ["network_key", "sd_key", "w", "sd_module"])


class SdVersion(enum.Enum):
    Unknown = 1
    SD1 = 2
    SD2 = 3
    SDXL = 4


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
        self.sd_version = SdVersion.SDXL if str(self.metadata.get("ss_base_model_version", "")).startswith("sdxl_") \
            else SdVersion.SD1 if self.metadata else SdVersion.Unknown

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

    def get_alias(self):
        import networks

        if shared.opts.lora_preferred_name == "Filename" or self.alias.lower() in networks.forbidden_network_aliases:
            return self.name
        return self.alias


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


class ModuleType:
    def create_module(self, net: Network, weights: NetworkWeights) -> Network | None:
        return None


class NetworkModule:
    def __init__(self, net: Network, weights: NetworkWeights):
        self.network = net
        self.network_key = weights.network_key
        self.sd_key = weights.sd_key
        self.sd_module = weights.sd_module
        self.shape = self.sd_module.weight.shape if hasattr(self.sd_module, "weight") else None
        self.dim = None
        self.bias = weights.w.get("bias")
        self.alpha = weights.w["alpha"].item() if "alpha" in weights.w else None
        self.scale = weights.w["scale"].item() if "scale" in weights.w else None
        self.dora_scale = weights.w.get("dora_scale", None)

    def multiplier(self):
        if "transformer" in self.sd_key[:20]:
            return self.network.te_multiplier
        return self.network.unet_multiplier

    def calc_scale(self):
        if self.scale is not None:
            return self.scale
        if self.dim is not None and self.alpha is not None:
            return self.alpha / self.dim
        return 1.0

    def finalize_updown(self, updown, orig_weight, output_shape, ex_bias=None):
        if orig_weight.size().numel() == updown.size().numel():
            updown = updown.reshape(orig_weight.shape)
        if ex_bias is not None:
            ex_bias = ex_bias * self.multiplier()
        updown = updown * self.calc_scale()
        return updown * self.multiplier(), ex_bias

    def calc_updown(self, target):
        raise NotImplementedError()
