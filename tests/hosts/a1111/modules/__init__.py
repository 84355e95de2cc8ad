"""Fake of AUTOMATIC1111 v1.10.1's ``modules`` package (commit 82a973c04367123ae98bd9abdf80d9eda9b910e2):
the modules in this folder are A1111's own; those both hosts have alike live in
``tests/hosts/common/modules`` and are found through ``__path__``."""

from pathlib import Path

__path__.append(str(Path(__file__).resolve().parents[2] / "common" / "modules"))
