"""Fake of ``ldm_patched.modules`` (reforge): the modules in this folder are this host's own; those both
``ldm_patched`` hosts have alike live in ``tests/hosts/ldm_family/ldm_patched/modules`` (found through
``__path__``)."""

from pathlib import Path

__path__.append(str(Path(__file__).resolve().parents[3] / "ldm_family" / "ldm_patched" / "modules"))
