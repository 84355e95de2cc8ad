"""Fake of ``extensions-builtin/Lora/networks.py`` of the ``ldm_patched`` hosts (reForge main@3b56b268 L51-105,
Forge Classic@1f95d717 L24-90; the same flow, Forge's before ``backend``).

``load_networks(names, te, unet, dyn)`` (on every activation, ``[]`` without ``<lora>`` tags): returns at once
without a model; **clears ``loaded_networks``**, lists the named files (re-scanning the folder when one is
unknown); when ``[[file, unet weight, te weight], ...]`` differs from ``current_lora_hash``, rebuilds from
``forge_objects_original``: each file through ``ldm_patched.modules.sd.load_lora_for_models`` (a **clone**
of the UNet patcher with that file's patches at the unet weight), and stores the result as
``forge_objects_after_applying_lora``; when unchanged it leaves that untouched. The Lora folder:
``available_networks`` / ``_aliases``, ``process_network_files``, ``list_available_networks`` (run at
import). reForge's ``networks.py`` adds ``update_available_networks_by_names`` (its file in this folder's
host fake); Classic has none. Each host's ``networks.py`` fake is this module plus what differs.
Left out: text encoder (CLIP) patches, the state-dict cache.
"""

from __future__ import annotations

import os

import network
from ldm_patched.modules.sd import load_lora_for_models
from ldm_patched.modules.utils import load_torch_file
from modules import errors, sd_models, shared


def load_network(name, network_on_disk):
    net = network.Network(name, network_on_disk)
    net.mtime = os.path.getmtime(network_on_disk.filename)
    return net


def _on_disk(names):
    return [available_networks.get(name) if name.lower() in forbidden_network_aliases
            else available_network_aliases.get(name) for name in names]


def load_networks(names, te_multipliers=None, unet_multipliers=None, dyn_dims=None):
    current_sd = sd_models.model_data.get_sd_model()
    if current_sd is None:
        return
    loaded_networks.clear()
    networks_on_disk = _on_disk(names)
    if any(x is None for x in networks_on_disk):
        list_available_networks()
        networks_on_disk = _on_disk(names)
    for network_on_disk, name in zip(networks_on_disk, names):
        try:
            net = load_network(name, network_on_disk)
        except Exception as e:
            errors.display(e, f"loading network {network_on_disk.filename}")
            continue
        net.mentioned_name = name
        network_on_disk.read_hash()
        loaded_networks.append(net)
    compiled_lora_targets = [[a.filename, b, c] for a, b, c in zip(networks_on_disk, unet_multipliers, te_multipliers)]
    compiled_lora_targets_hash = str(compiled_lora_targets)
    if current_sd.current_lora_hash == compiled_lora_targets_hash:
        return
    current_sd.current_lora_hash = compiled_lora_targets_hash
    current_sd.forge_objects.unet = current_sd.forge_objects_original.unet
    current_sd.forge_objects.clip = current_sd.forge_objects_original.clip
    for filename, strength_model, strength_clip in compiled_lora_targets:
        lora_sd = load_torch_file(filename, safe_load=True)
        current_sd.forge_objects.unet, current_sd.forge_objects.clip = load_lora_for_models(
            current_sd.forge_objects.unet, current_sd.forge_objects.clip, lora_sd, strength_model, strength_clip,
            filename=filename)
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
