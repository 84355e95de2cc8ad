"""Fake of reForge main@3b56b268 ``ldm_patched/modules/sd.py``: ``load_lora_for_models(model, clip, lora,
strength_model, strength_clip, filename)`` (L89-139): the UNet's LoRA keys unless ``strength_model`` is 0,
``lora_convert.convert_lora``, ``lora.load_lora`` (patches only), then ``model.clone().add_patches(patches,
strength_model)``; prints what it loaded. Left out: the CLIP keys and patches (no text encoders here)."""

from ldm_patched.modules import lora, lora_convert


def load_lora_for_models(model, clip, lora_sd, strength_model, strength_clip, filename="default"):
    key_map = {}
    if model is not None and strength_model != 0:
        key_map = lora.model_lora_keys_unet(model.model, key_map)
    if not key_map:
        return model, clip
    loaded = lora.load_lora(lora_convert.convert_lora(lora_sd), key_map)
    new_modelpatcher = model.clone()
    loaded_keys = set(new_modelpatcher.add_patches(loaded, strength_model))
    if loaded_keys:
        print(f"[LORA] Loaded {filename} with {len(loaded_keys)} keys at weight {strength_model}")
    return new_modelpatcher, clip
