"""Fake of Forge's ``modules`` package (main, commit dfdcbab685e57677014f05a3309b48cc87383167): the
modules in this folder are Forge's own; those both hosts have alike live in
``tests/hosts/common/modules`` and are found through ``__path__``."""

from pathlib import Path

__path__.append(str(Path(__file__).resolve().parents[2] / "common" / "modules"))
