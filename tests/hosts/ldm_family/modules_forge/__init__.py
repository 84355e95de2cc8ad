"""Fake of the ``modules_forge`` package of the ``ldm_patched`` hosts (reForge main@3b56b268, Forge
Classic@1f95d717): present, like on every Forge, beside ``ldm_patched`` and without ``backend``."""
