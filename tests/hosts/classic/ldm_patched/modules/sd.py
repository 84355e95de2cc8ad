"""Fake of Forge Classic@1f95d717 ``ldm_patched/modules/sd.py``: ``load_lora_for_models(model, clip, lora,
strength_model, strength_clip, filename)`` (L66): ``lora.load_lora`` against the UNet's keys (a pair: patches
and unused keys); **more than 12 unused keys: "LoRA version mismatch" and the model is returned as it was**;
else ``model.clone().add_patches(patches, strength_model)``. Left out: the CLIP keys and patches."""

from ldm_patched.modules import lora


def load_lora_for_models(model, clip, lora_sd, strength_model, strength_clip, filename="default"):
    unet_keys = lora.model_lora_keys_unet(model.model) if model is not None else {}
    lora_unet, lora_unmatch = lora.load_lora(lora_sd, unet_keys)
    if len(lora_unmatch) > 12:
        print(f"[LORA] LoRA version mismatch for {type(model.model).__name__}: {filename}")
        return model, clip
    new_modelpatcher = model.clone()
    new_modelpatcher.add_patches(lora_unet, strength_model)
    return new_modelpatcher, clip
