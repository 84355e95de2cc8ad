"""Fake of Forge Classic@1f95d717 ``extensions-builtin/Lora/networks.py``: the ``ldm_patched`` family's
``networks`` (``ldm_networks``); Classic has no ``update_available_networks_by_names`` (a new file is found
by ``list_available_networks``, or by ``load_networks`` when a tag names an unknown file)."""

from ldm_networks import *  # noqa: F403
