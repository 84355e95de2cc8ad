"""Fake of Forge@dfdcbab ``extensions-builtin/sd_forge_lora/networks.py``.

``load_networks(names, te, unet, dyn)`` (on every activation, ``[]`` without ``<lora>`` tags):
returns at once without a model; **clears ``loaded_networks``** and lists the named files; when
the list of (file, unet weight, te weight) differs from ``current_lora_hash``, rebuilds from
``forge_objects_original``: for each file, ``load_lora_for_models`` converts it with the backend's
``load_lora(sd, model_lora_keys_unet(unet.model))`` and adds it to a **clone** of the UNet patcher
(``add_patches(filename=<path>, strength_patch=<unet weight>)``), then stores the result as
``forge_objects_after_applying_lora``; when unchanged it leaves that untouched. The Lora folder:
``available_networks`` / ``_aliases``, ``process_network_files``, ``update_available_networks_by_names``,
``list_available_networks`` (run at import). Left out: text encoder (CLIP) patches, online LoRA,
the state-dict cache's size.
"""

from __future__ import annotations

import os

import network
import safetensors.torch
from backend.patcher.lora import load_lora, model_lora_keys_unet
from modules import errors, sd_models, shared


def load_lora_for_models(model, clip, lora, strength_model, strength_clip, filename="default", online_mode=False):
    unet_keys = model_lora_keys_unet(model.model) if model is not None else {}
    lora_unet, lora_unmatch = load_lora(lora, unet_keys)
    if len(lora_unmatch) > 12:
        print(f"[LORA] LoRA version mismatch: {filename}")
        return model, clip
    new_model = model.clone() if model is not None else None
    if new_model is not None and len(lora_unet) > 0:
        loaded_keys = new_model.add_patches(filename=filename, patches=lora_unet, strength_patch=strength_model,
                                            online_mode=online_mode)
        skipped_keys = [item for item in lora_unet if item not in loaded_keys]
        if len(skipped_keys) <= 12:
            model = new_model
    return model, clip


def load_lora_state_dict(filename):
    return safetensors.torch.load_file(filename)


def load_network(name, network_on_disk):
    net = network.Network(name, network_on_disk)
    net.mtime = os.path.getmtime(network_on_disk.filename)
    return net


def load_networks(names, te_multipliers=None, unet_multipliers=None, dyn_dims=None):
    current_sd = sd_models.model_data.get_sd_model()
    if current_sd is None:
        return
    loaded_networks.clear()
    unavailable_networks = [name for name in names if available_network_aliases.get(name) is None]
    if unavailable_networks:
        update_available_networks_by_names(unavailable_networks)
    networks_on_disk = [available_networks.get(name, None) if name.lower() in forbidden_network_aliases
                        else available_network_aliases.get(name, None) for name in names]
    for network_on_disk, name in zip(networks_on_disk, names):
        try:
            net = load_network(name, network_on_disk)
        except Exception as e:
            errors.display(e, f"loading network {network_on_disk.filename}")
            continue
        net.mentioned_name = name
        network_on_disk.read_hash()
        loaded_networks.append(net)
    online_mode = False
    compiled_lora_targets = [[a.filename, b, c, online_mode]
                             for a, b, c in zip(networks_on_disk, unet_multipliers, te_multipliers)]
    compiled_lora_targets_hash = str(compiled_lora_targets)
    if current_sd.current_lora_hash == compiled_lora_targets_hash:
        return
    current_sd.current_lora_hash = compiled_lora_targets_hash
    current_sd.forge_objects.unet = current_sd.forge_objects_original.unet
    current_sd.forge_objects.clip = current_sd.forge_objects_original.clip
    for filename, strength_model, strength_clip, online_mode in compiled_lora_targets:
        lora_sd = load_lora_state_dict(filename)
        current_sd.forge_objects.unet, current_sd.forge_objects.clip = load_lora_for_models(
            current_sd.forge_objects.unet, current_sd.forge_objects.clip, lora_sd, strength_model, strength_clip,
            filename=filename, online_mode=online_mode)
    current_sd.forge_objects_after_applying_lora = current_sd.forge_objects.shallow_copy()


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

list_available_networks()
