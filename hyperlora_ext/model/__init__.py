"""The HyperLoRA model: the official checkpoint on disk and in memory, and its math.

On disk: ``locations`` (the models folder layout), ``checkpoint`` (validate a folder from headers),
``safetensors_io`` (safe reads). Math: ``hypernet`` (ID projector, resampler, basis mixing),
``encoders`` (CLIP), ``sdxl_names`` (module names), ``precision`` (device / dtype policy),
``numerics`` (our own torch numerics inside a host). Running it: ``engine`` (``HyperLoRAModel``:
features -> tokens -> LoRA, identity -> LoRA) and ``pipeline`` (photos -> identity).

May import: ``identities``, ``photos``, ``hyperlora_ext.lora`` / ``errors`` / ``files`` /
``integrity``, torch, transformers, safetensors. Never ``download``, ``cli`` or any WebUI layer.
"""
