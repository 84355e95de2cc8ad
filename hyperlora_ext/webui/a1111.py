"""AUTOMATIC1111 adapter: the ``hyperlora`` ExtraNetwork on top of the built-in Lora extension.

Activation lives in the ExtraNetwork (not in Script hooks) so that hires fix and ADetailer
passes, which run extra networks but filter script hooks, apply HyperLoRA too. Our in-memory
``network.Network`` objects go into ``networks.loaded_networks``; because the Lora
extension's ``load_networks`` clears that list whenever it runs, it is wrapped to re-append
ours, so tag order never matters. The Lora extension merges the set lazily (with CPU backups)
and restores the original weights exactly when the set changes.

Imports the WebUI (``modules``) and the Lora extension's ``network``/``networks`` modules:
only importable inside A1111.
"""

from __future__ import annotations

import logging
import weakref
from collections import OrderedDict
from typing import Any, Sequence

import network  # built-in Lora extension
import networks  # built-in Lora extension
from modules import shared

from ..app.core.service import HyperLoRAService, LoRAWeights
from ..app.generation.activation import resolve_params
from ..app.generation.processing import ExtraNetworkParams, Processing
from ..lora import group_by_layer
from .extra_network import HostAdapter

log = logging.getLogger(__name__)
NETWORK_CACHE_SIZE = 4


class _InMemoryLoRA:
    """Stands in for ``network.NetworkOnDisk`` (read by the Lora extension for hashes/aliases)."""

    def __init__(self, weights: LoRAWeights) -> None:
        self.name = self.alias = weights.key
        self.filename = f"<hyperlora:{weights.identity.name}>"
        self.metadata: dict[str, str] = {}
        self.hash = self.shorthash = weights.identity.hash
        self.is_safetensors = True
        self.sd_version = network.SdVersion.SDXL

    def read_hash(self) -> None:
        pass

    def set_hash(self, v: str) -> None:
        pass

    def get_alias(self) -> str:
        return self.alias


class A1111Host(HostAdapter[network.Network]):
    """Builds our ``network.Network`` objects and keeps them in ``networks.loaded_networks``."""

    def __init__(self, service: HyperLoRAService) -> None:
        super().__init__(service, networks)
        # per loaded model (weakly: an unloaded model and its layers can go), identity version -> network
        self._cache: weakref.WeakKeyDictionary[object, OrderedDict[str, network.Network]] = weakref.WeakKeyDictionary()

    def current_model(self) -> Any:
        return shared.sd_model

    # ---- networks --------------------------------------------------------------------------
    def build_network(self, weights: LoRAWeights) -> network.Network:
        """kohya dict -> ``network.Network`` with the Lora extension's own module types
        (cached per identity version and base weight)."""
        sd_model = shared.sd_model
        cache = self._cache.setdefault(sd_model, OrderedDict())
        cached = cache.get(weights.key)
        if cached is not None:
            cache.move_to_end(weights.key)
            return cached
        if not hasattr(sd_model, "network_layer_mapping"):
            networks.assign_network_names_to_compvis_modules(sd_model)
        mapping = sd_model.network_layer_mapping
        net = network.Network(weights.key, _InMemoryLoRA(weights))
        missing = []
        for layer, parts in group_by_layer(weights.tensors).items():
            sd_key = layer.replace("lora_unet_", "diffusion_model_", 1)
            module = mapping.get(sd_key)
            if module is None:
                missing.append(layer)
                continue
            w = network.NetworkWeights(network_key=layer, sd_key=sd_key, w=parts, sd_module=module)
            for module_type in networks.module_types:
                built = module_type.create_module(net, w)
                if built is not None:
                    net.modules[sd_key] = built
                    break
        if missing:
            raise RuntimeError(f"{len(missing)} HyperLoRA layers have no match in this model "
                               f"(e.g. {missing[0]}); is it an SDXL model?")
        net.hyperlora = True
        cache[weights.key] = net
        while len(cache) > NETWORK_CACHE_SIZE:
            cache.popitem(last=False)
        return net

    def sync(self) -> None:
        """Make ``networks.loaded_networks`` hold the Lora extension's networks plus ours."""
        ours = {id(n) for n in self.active}
        loaded = networks.loaded_networks
        loaded[:] = [n for n in loaded if not getattr(n, "hyperlora", False) or id(n) in ours]
        for net in self.active:
            if all(n is not net for n in loaded):
                loaded.append(net)

    def activate(self, p: Processing, params_list: Sequence[ExtraNetworkParams]) -> None:
        """Resolve this pass's tags and put the networks in place (an empty list removes ours)."""
        is_sdxl = bool(getattr(shared.sd_model, "is_sdxl", False))
        resolution = resolve_params(self.service, p, params_list, is_sdxl)
        active = []
        for req, weights in resolution.weights:
            try:
                net = self.build_network(weights)
            except RuntimeError as exc:
                p.comment(f"HyperLoRA: {exc}; skipped")
                continue
            net.te_multiplier = net.unet_multiplier = req.weight
            net.dyn_dim = None
            net.mentioned_name = None  # keeps us out of "Lora hashes"
            active.append(net)
        self.active = active
        self.bind()
        self.sync()
