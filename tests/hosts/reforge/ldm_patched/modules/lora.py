"""Fake of reForge main@3b56b268 ``ldm_patched/modules/lora.py`` (and ``weight_adapter/lora.py``).

* ``model_lora_keys_unet(model, key_map={})``: for every ``diffusion_model.X.weight`` of the model's state
  dict, ``lora_unet_<X with _>`` and ``diffusion_model.X`` -> that key (other parameters by their own key).
  Left out: the diffusers-name keys built from the model config.
* ``load_lora(lora, to_load, log_missing=True)``: for each layer name in ``to_load`` that the dict has as
  ``.lora_up.weight`` / ``.lora_down.weight`` (``.alpha``, ``.lora_mid.weight``, ``.dora_scale`` optional),
  ``patches[model key] = LoRAAdapter(loaded_keys, (up, down, alpha, mid, dora_scale, reshape))`` holding
  the dict's own tensors; **returns only the patches** (unused keys are logged when ``log_missing``).
* ``calculate_weight(patches, weight, key)``: each patch ``(strength, adapter, strength_model, offset,
  function)``: ``weight += function(strength * alpha / rank * up @ down)`` in float32 (the adapter's
  ``calculate_weight``). Left out: LoHa, LoKr, GLoRA, OFT, BOFT, diff/set patches, DoRA, offsets.
"""

import logging

import torch


class LoRAAdapter:
    name = "lora"

    def __init__(self, loaded_keys, weights):
        self.loaded_keys = loaded_keys
        self.weights = weights

    @classmethod
    def load(cls, x, lora, alpha, dora_scale, loaded_keys):
        up_name, down_name, mid_name = f"{x}.lora_up.weight", f"{x}.lora_down.weight", f"{x}.lora_mid.weight"
        if up_name not in lora:
            return None
        mid = lora.get(mid_name)
        if mid is not None:
            loaded_keys.add(mid_name)
        loaded_keys.update((up_name, down_name))
        return cls(loaded_keys, (lora[up_name], lora[down_name], alpha, mid, dora_scale, None))

    def calculate_weight(self, weight, key, strength, strength_model, offset, function,
                         intermediate_dtype=torch.float32):
        up, down, alpha, mid, dora_scale, _reshape = self.weights
        if mid is not None or dora_scale is not None:
            raise NotImplementedError("LoCon mid weights and DoRA are not modelled")
        mat1 = up.to(weight.device, intermediate_dtype)
        mat2 = down.to(weight.device, intermediate_dtype)
        alpha = alpha / mat2.shape[0] if alpha is not None else 1.0
        lora_diff = torch.mm(mat1.flatten(start_dim=1), mat2.flatten(start_dim=1)).reshape(weight.shape)
        weight += function(((strength * alpha) * lora_diff).type(weight.dtype))
        return weight


def model_lora_keys_unet(model, key_map={}):  # noqa: B006 (the host's signature)
    for k in model.state_dict().keys():
        if k.startswith("diffusion_model."):
            if k.endswith(".weight"):
                key_lora = k[len("diffusion_model."):-len(".weight")].replace(".", "_")
                key_map[f"lora_unet_{key_lora}"] = k
                key_map[k[:-len(".weight")]] = k
            else:
                key_map[k] = k
    return key_map


def load_lora(lora, to_load, log_missing=True):
    patch_dict = {}
    loaded_keys = set()
    for x in to_load:
        alpha_name = f"{x}.alpha"
        alpha = None
        if alpha_name in lora:
            alpha = lora[alpha_name].item()
            loaded_keys.add(alpha_name)
        dora_scale_name = f"{x}.dora_scale"
        dora_scale = lora.get(dora_scale_name)
        if dora_scale is not None:
            loaded_keys.add(dora_scale_name)
        adapter = LoRAAdapter.load(x, lora, alpha, dora_scale, loaded_keys)
        if adapter is not None:
            patch_dict[to_load[x]] = adapter
            loaded_keys.update(adapter.loaded_keys)
    if log_missing:
        for x in lora.keys():
            if x not in loaded_keys:
                logging.warning(f"lora key not loaded: {x}")
    return patch_dict


def calculate_weight(patches, weight, key, intermediate_dtype=torch.float32):
    for strength, v, strength_model, offset, function in patches:
        if function is None:
            def function(a):
                return a
        if offset is not None:
            raise NotImplementedError("patch offsets are not modelled")
        if strength_model != 1.0:
            weight *= strength_model
        weight = v.calculate_weight(weight, key, strength, strength_model, offset, function, intermediate_dtype)
    return weight
