"""Fake of the ``modules`` package of Forge Classic@1f95d717: the modules in this folder are its own; those both
``ldm_patched`` hosts have alike live in ``tests/hosts/ldm_family/modules``, those all Forge hosts have alike
in ``tests/hosts/forge_family/modules``, those every host has alike in ``tests/hosts/common/modules`` (all
found through ``__path__``, in that order)."""

from pathlib import Path

_HOSTS = Path(__file__).resolve().parents[2]
__path__ += [str(_HOSTS / "ldm_family" / "modules"), str(_HOSTS / "forge_family" / "modules"),
             str(_HOSTS / "common" / "modules")]
