"""Fake of Forge Classic@1f95d717 ``ldm_patched/modules/lora.py``.

* ``model_lora_keys_unet(model, key_map={})`` (L258): for every ``diffusion_model.X.weight`` of the model's
  state dict, ``lora_unet_<X with _>`` -> that key. Left out: the diffusers-name keys.
* ``load_lora(lora, to_load)`` (L17): for each layer name in ``to_load`` that the dict has as
  ``.lora_up.weight`` / ``.lora_down.weight`` (``.alpha``, ``.lora_mid.weight`` optional):
  ``patches[model key] = ("lora", (up, down, alpha, mid))`` holding the dict's own tensors; **returns
  ``(patches, the keys it did not use)``**. Left out: the diffusers and transformers spellings, LoHa, LoKr,
  GLoRA, diff patches.
"""


def model_lora_keys_unet(model, key_map={}):  # noqa: B006 (the host's signature)
    for k in model.state_dict().keys():
        if k.startswith("diffusion_model.") and k.endswith(".weight"):
            key_lora = k[len("diffusion_model."):-len(".weight")].replace(".", "_")
            key_map[f"lora_unet_{key_lora}"] = k
    return key_map


def load_lora(lora, to_load):
    patch_dict = {}
    loaded_keys = set()
    for x in to_load:
        alpha_name = f"{x}.alpha"
        alpha = None
        if alpha_name in lora:
            alpha = lora[alpha_name].item()
            loaded_keys.add(alpha_name)
        up_name, down_name, mid_name = f"{x}.lora_up.weight", f"{x}.lora_down.weight", f"{x}.lora_mid.weight"
        if up_name in lora:
            mid = lora.get(mid_name)
            if mid is not None:
                loaded_keys.add(mid_name)
            patch_dict[to_load[x]] = ("lora", (lora[up_name], lora[down_name], alpha, mid))
            loaded_keys.update((up_name, down_name))
    remaining_dict = {x: y for x, y in lora.items() if x not in loaded_keys}
    return patch_dict, remaining_dict
