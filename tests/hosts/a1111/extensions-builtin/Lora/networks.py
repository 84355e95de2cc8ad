"""Fake of A1111 v1.10.1@82a973c ``extensions-builtin/Lora/networks.py``.

* ``assign_network_names_to_compvis_modules``: ``sd_model.network_layer_mapping``, every module of
  ``shared.sd_model.model`` by its dotted name with ``_`` (SDXL text encoders' embedders too), and
  each module's ``network_layer_name``.
* ``load_network``: a LoRA file -> ``Network``; a key ``lora_unet_X.part`` goes to layer
  ``diffusion_model_X`` (the SDXL compvis spelling), parts grouped per layer into
  ``NetworkWeights``, the first of ``module_types`` that accepts them builds the module.
* ``load_networks(names, te, unet, dyn)``: **clears ``loaded_networks``**, then appends the named
  files' networks with their multipliers (``dyn_dim`` 1.0 when not given); names not found
  become a comment "Lora not found".
* ``network_apply_weights``: what a Linear's forward does before running: when the wanted set
  ``(name, te, unet, dyn_dim)`` of ``loaded_networks`` differs from the layer's current one,
  restore the weight from its CPU backup (made on first use), then add each network's
  ``calc_updown``.
* the Lora folder: ``available_networks`` / ``_aliases`` / ``forbidden_network_aliases``,
  ``process_network_files``, ``update_available_networks_by_names``, ``list_available_networks``
  (run at import, like the host).

Left out: diffusers-style and text-encoder key conversion, bundled embeddings, the "old method"
(functional) forward, biases, MHA/QKV/conv layers, and errors counted per network.
"""

from __future__ import annotations

import os

import network
import network_lora
import torch
from modules import devices, errors, sd_models, shared

module_types = [network_lora.ModuleTypeLora()]


def assign_network_names_to_compvis_modules(sd_model):
    network_layer_mapping = {}
    if shared.sd_model.is_sdxl:
        for i, embedder in enumerate(shared.sd_model.conditioner.embedders):
            if not hasattr(embedder, "wrapped"):
                continue
            for name, module in embedder.wrapped.named_modules():
                network_name = f'{i}_{name.replace(".", "_")}'
                network_layer_mapping[network_name] = module
                module.network_layer_name = network_name
    for name, module in shared.sd_model.model.named_modules():
        network_name = name.replace(".", "_")
        network_layer_mapping[network_name] = module
        module.network_layer_name = network_name
    sd_model.network_layer_mapping = network_layer_mapping


def load_network(name, network_on_disk):
    net = network.Network(name, network_on_disk)
    net.mtime = os.path.getmtime(network_on_disk.filename)
    sd = sd_models.read_state_dict(network_on_disk.filename)
    if not hasattr(shared.sd_model, "network_layer_mapping"):
        assign_network_names_to_compvis_modules(shared.sd_model)
    keys_failed_to_match = {}
    matched_networks = {}
    for key_network, weight in sd.items():
        key_network_without_network_parts, _, network_part = key_network.partition(".")
        key = key_network_without_network_parts
        sd_module = shared.sd_model.network_layer_mapping.get(key, None)
        if sd_module is None and "lora_unet" in key_network_without_network_parts:
            key = key_network_without_network_parts.replace("lora_unet", "diffusion_model")
            sd_module = shared.sd_model.network_layer_mapping.get(key, None)
        if sd_module is None:
            keys_failed_to_match[key_network] = key
            continue
        if key not in matched_networks:
            matched_networks[key] = network.NetworkWeights(network_key=key_network, sd_key=key, w={},
                                                           sd_module=sd_module)
        matched_networks[key].w[network_part] = weight
    for key, weights in matched_networks.items():
        net_module = None
        for nettype in module_types:
            net_module = nettype.create_module(net, weights)
            if net_module is not None:
                break
        if net_module is None:
            raise AssertionError(f"Could not find a module type that would accept those keys: {', '.join(weights.w)}")
        net.modules[key] = net_module
    return net


def load_networks(names, te_multipliers=None, unet_multipliers=None, dyn_dims=None):
    already_loaded = {net.name: net for net in loaded_networks if net.name in names}
    loaded_networks.clear()
    unavailable_networks = [name for name in names if available_network_aliases.get(name) is None]
    if unavailable_networks:
        update_available_networks_by_names(unavailable_networks)
    networks_on_disk = [available_networks.get(name, None) if name.lower() in forbidden_network_aliases
                        else available_network_aliases.get(name, None) for name in names]
    failed_to_load_networks = []
    for i, (network_on_disk, name) in enumerate(zip(networks_on_disk, names)):
        net = already_loaded.get(name, None)
        if network_on_disk is not None:
            if net is None:
                net = networks_in_memory.get(name)
            if net is None or os.path.getmtime(network_on_disk.filename) > net.mtime:
                try:
                    net = load_network(name, network_on_disk)
                    networks_in_memory.pop(name, None)
                    networks_in_memory[name] = net
                except Exception as e:
                    errors.display(e, f"loading network {network_on_disk.filename}")
                    continue
            net.mentioned_name = name
            network_on_disk.read_hash()
        if net is None:
            failed_to_load_networks.append(name)
            continue
        net.te_multiplier = te_multipliers[i] if te_multipliers else 1.0
        net.unet_multiplier = unet_multipliers[i] if unet_multipliers else 1.0
        net.dyn_dim = dyn_dims[i] if dyn_dims else 1.0
        loaded_networks.append(net)
    if failed_to_load_networks:
        not_found_comments.append(f'Lora not found: {", ".join(failed_to_load_networks)}')


def store_weights_backup(weight):
    return None if weight is None else weight.to(devices.cpu, copy=True)


def network_restore_weights_from_backup(self):
    weights_backup = getattr(self, "network_weights_backup", None)
    if weights_backup is not None:
        self.weight.copy_(weights_backup)


def network_apply_weights(self):
    network_layer_name = getattr(self, "network_layer_name", None)
    if network_layer_name is None:
        return
    current_names = getattr(self, "network_current_names", ())
    wanted_names = tuple((x.name, x.te_multiplier, x.unet_multiplier, x.dyn_dim) for x in loaded_networks)
    weights_backup = getattr(self, "network_weights_backup", None)
    if weights_backup is None and wanted_names != ():
        if current_names != ():
            raise RuntimeError(f"{network_layer_name} - no backup weights found and current weights are not unchanged")
        self.network_weights_backup = store_weights_backup(self.weight)
    if current_names != wanted_names:
        with torch.no_grad():
            network_restore_weights_from_backup(self)
            for net in loaded_networks:
                module = net.modules.get(network_layer_name, None)
                if module is None:
                    continue
                updown, _ = module.calc_updown(self.weight)
                self.weight.copy_((self.weight.to(dtype=updown.dtype) + updown).to(dtype=self.weight.dtype))
        self.network_current_names = wanted_names


def process_network_files(names: list[str] | None = None):
    for filename in shared.walk_files(shared.cmd_opts.lora_dir, allowed_extensions=[".pt", ".ckpt", ".safetensors"]):
        if os.path.isdir(filename):
            continue
        name = os.path.splitext(os.path.basename(filename))[0]
        if names and name not in names:
            continue
        try:
            entry = network.NetworkOnDisk(name, filename)
        except OSError:
            errors.report(f"Failed to load network {name} from {filename}", exc_info=True)
            continue
        available_networks[name] = entry
        if entry.alias in available_network_aliases:
            forbidden_network_aliases[entry.alias.lower()] = 1
        available_network_aliases[name] = entry
        available_network_aliases[entry.alias] = entry


def update_available_networks_by_names(names: list[str]):
    process_network_files(names)


def list_available_networks():
    available_networks.clear()
    available_network_aliases.clear()
    forbidden_network_aliases.clear()
    available_network_hash_lookup.clear()
    forbidden_network_aliases.update({"none": 1, "Addams": 1})
    os.makedirs(shared.cmd_opts.lora_dir, exist_ok=True)
    process_network_files()


extra_network_lora = None
available_networks = {}
available_network_aliases = {}
loaded_networks = []
networks_in_memory = {}
available_network_hash_lookup = {}
forbidden_network_aliases = {}
not_found_comments = []  # the host appends these to sd_hijack.model_hijack.comments

list_available_networks()
