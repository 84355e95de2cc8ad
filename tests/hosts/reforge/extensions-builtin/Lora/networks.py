"""Fake of reForge main@3b56b268 ``extensions-builtin/Lora/networks.py``: the ``ldm_patched`` family's
``networks`` (``ldm_networks``) with reForge's ``update_available_networks_by_names(names)``, which scans
the Lora folder for those names only."""

from ldm_networks import *  # noqa: F403
from ldm_networks import process_network_files


def update_available_networks_by_names(names: list[str]):
    process_network_files(names)
