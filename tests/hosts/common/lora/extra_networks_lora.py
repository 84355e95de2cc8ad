"""Fake of ``extra_networks_lora.py`` of both hosts' built-in Lora extension, the same at A1111
v1.10.1@82a973c (``extensions-builtin/Lora``) and Forge@dfdcbab (``extensions-builtin/sd_forge_lora``):
``<lora:NAME:te:unet:dyn>`` (also ``te=``, ``unet=``, ``dyn=``) -> ``networks.load_networks`` (the
host's own, from its Lora folder), which it calls on every activation (with ``[]`` when the prompt
has no ``<lora>``), then "Lora hashes" in the infotext for every loaded network with a short hash
and a ``mentioned_name``. Left out: ``sd_lora`` (the "add network to prompt" setting)."""

import networks
from modules import extra_networks, shared


class ExtraNetworkLora(extra_networks.ExtraNetwork):
    def __init__(self):
        super().__init__("lora")
        self.errors = {}

    remove_symbols = str.maketrans("", "", ":,")

    def activate(self, p, params_list):
        self.errors.clear()
        names, te_multipliers, unet_multipliers, dyn_dims = [], [], [], []
        for params in params_list:
            assert params.items
            names.append(params.positional[0])
            te_multiplier = float(params.positional[1]) if len(params.positional) > 1 else 1.0
            te_multiplier = float(params.named.get("te", te_multiplier))
            unet_multiplier = float(params.positional[2]) if len(params.positional) > 2 else te_multiplier
            unet_multiplier = float(params.named.get("unet", unet_multiplier))
            dyn_dim = int(params.positional[3]) if len(params.positional) > 3 else None
            dyn_dim = int(params.named["dyn"]) if "dyn" in params.named else dyn_dim
            te_multipliers.append(te_multiplier)
            unet_multipliers.append(unet_multiplier)
            dyn_dims.append(dyn_dim)
        networks.load_networks(names, te_multipliers, unet_multipliers, dyn_dims)
        if shared.opts.lora_add_hashes_to_infotext:
            if not getattr(p, "is_hr_pass", False) or not hasattr(p, "lora_hashes"):
                p.lora_hashes = {}
            for item in networks.loaded_networks:
                if item.network_on_disk.shorthash and item.mentioned_name:
                    p.lora_hashes[item.mentioned_name.translate(self.remove_symbols)] = item.network_on_disk.shorthash
            if p.lora_hashes:
                p.extra_generation_params["Lora hashes"] = ", ".join(f"{k}: {v}" for k, v in p.lora_hashes.items())

    def deactivate(self, p):
        if self.errors:
            p.comment("Networks with errors: " + ", ".join(f"{k} ({v})" for k, v in self.errors.items()))
            self.errors.clear()
