"""Fake of the ``ldm_patched`` package (classic): the ComfyUI-derived backend of the ``ldm_patched`` hosts."""
