"""Fake of A1111 v1.10.1@82a973c ``extensions-builtin/Lora/network_lora.py`` (with ``lyco_helpers``'
``rebuild_conventional``): ``ModuleTypeLora`` accepts a layer with ``lora_up.weight`` and
``lora_down.weight``; ``NetworkModuleLora`` copies each into a bias-free ``torch.nn.Linear`` cast
to ``devices.dtype`` on the CPU, ``dim`` = the rank; ``calc_updown`` = up @ down (to ``dyn_dim``),
scaled by ``finalize_updown``. Left out: conv layers, ``lora_mid`` (LoCon), the lora_A/B spelling."""

import network
import torch
from modules import devices


def rebuild_conventional(up, down, shape, dyn_dim=None):
    up = up.reshape(up.size(0), -1)
    down = down.reshape(down.size(0), -1)
    if dyn_dim is not None:
        up = up[:, :dyn_dim]
        down = down[:dyn_dim, :]
    return (up @ down).reshape(shape)


class ModuleTypeLora(network.ModuleType):
    def create_module(self, net: network.Network, weights: network.NetworkWeights):
        if all(x in weights.w for x in ["lora_up.weight", "lora_down.weight"]):
            return NetworkModuleLora(net, weights)
        return None


class NetworkModuleLora(network.NetworkModule):
    def __init__(self, net: network.Network, weights: network.NetworkWeights):
        super().__init__(net, weights)
        self.up_model = self.create_module(weights.w, "lora_up.weight")
        self.down_model = self.create_module(weights.w, "lora_down.weight")
        self.mid_model = None
        self.dim = weights.w["lora_down.weight"].shape[0]

    def create_module(self, weights, key):
        weight = weights.get(key)
        if type(self.sd_module) is not torch.nn.Linear:
            raise AssertionError(f"Lora layer {self.network_key} matched a layer with unsupported type: "
                                 f"{type(self.sd_module).__name__}")
        weight = weight.reshape(weight.shape[0], -1)
        module = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        with torch.no_grad():
            module.weight.copy_(weight)
        module.to(device=devices.cpu, dtype=devices.dtype)
        module.weight.requires_grad_(False)
        return module

    def calc_updown(self, orig_weight):
        up = self.up_model.weight.to(orig_weight.device)
        down = self.down_model.weight.to(orig_weight.device)
        output_shape = [up.size(0), down.size(1)]
        updown = rebuild_conventional(up, down, output_shape, self.network.dyn_dim)
        return self.finalize_updown(updown, orig_weight, output_shape)
