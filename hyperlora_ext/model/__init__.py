"""The HyperLoRA model: the official checkpoint on disk and in memory, and its math.

On disk: ``locations`` (the models folder layout), ``checkpoint`` (validate a folder from headers),
``safetensors_io`` (safe reads). Math: ``hypernet`` (ID projector, resampler, basis mixing),
``encoders`` (CLIP), ``sdxl_names`` (module names), ``precision`` (device / dtype policy),
``numerics`` (our own torch numerics inside a host). Memory: ``placement`` (where weights rest and
run, room made before any GPU copy, every decision recorded). Running it: ``engine``
(``HyperLoRAModel``: resampler, projector and bases with their placement; features -> tokens ->
LoRA, identity -> LoRA), ``face_models`` (``FaceModels``: insightface and CLIP, one set for every
variant, no hypernetwork needed) and ``pipeline`` (``PhotoPipeline``: photos -> identity, composing
the two).

May import: ``identities``, ``photos``, ``hyperlora_ext.lora`` / ``errors`` / ``files`` /
``integrity``, torch, transformers, safetensors. Never ``download``, ``cli`` or any WebUI layer.
"""
