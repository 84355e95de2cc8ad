"""Fake of Forge's ``modules`` package (main, commit dfdcbab685e57677014f05a3309b48cc87383167): the
modules in this folder are Forge's own; those all Forge hosts have alike live in
``tests/hosts/forge_family/modules``, those every host has alike in ``tests/hosts/common/modules``
(both found through ``__path__``)."""

from pathlib import Path

_HOSTS = Path(__file__).resolve().parents[2]
__path__ += [str(_HOSTS / "forge_family" / "modules"), str(_HOSTS / "common" / "modules")]
