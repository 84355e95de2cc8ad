"""Fake of the ``ldm_patched`` package (reforge): the ComfyUI-derived backend of the ``ldm_patched`` hosts."""
