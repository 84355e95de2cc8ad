"""Identities: the coefficient tokens of one person and what is done with them.

``identity`` (the ``Identity`` type, its file format and ``pool_tokens``), ``algebra`` (mixes and
sliders), ``store`` (the identity folder, safe for several processes, one identity per
case-insensitive name) with ``listing`` (the folder's listing, read again only when it changed) and
``previews`` (the card images that follow their identity file), ``lora_card`` (an identity's LoRA file
as a complete card on the WebUIs' Lora page: header metadata, preview, user-metadata sidecar).

May import: the standard library, torch, numpy, PIL, safetensors, and ``hyperlora_ext.errors`` /
``hyperlora_ext.files`` / ``hyperlora_ext.lora``. Never the model, the photo stages or any WebUI layer.
"""
