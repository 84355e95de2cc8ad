"""Identities: the coefficient tokens of one person and what is done with them.

``identity`` (the ``Identity`` type, its file format and ``pool_tokens``), ``algebra`` (mixes and
sliders), ``store`` (the identity folder, safe for several processes).

May import: the standard library, torch, numpy, PIL, safetensors, and ``hyperlora_ext.errors`` /
``hyperlora_ext.files``. Never the model, the photo stages or any WebUI layer.
"""
