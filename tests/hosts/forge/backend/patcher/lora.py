"""Fake of Forge@dfdcbab ``backend/patcher/lora.py`` with the ComfyUI functions it calls
(``packages_3rdparty/comfyui_lora_collection/lora.py``).

* ``model_lora_keys_unet(model, key_map={})``: for every ``diffusion_model.X.weight`` of the
  model's state dict, ``lora_unet_<X with _>`` -> that key (also ``diffusion_model.X`` for other
  parameters). Left out: the diffusers-name and Flux keys.
* ``load_lora(lora, to_load)``: for each LoRA layer name in ``to_load`` that the dict has as
  ``.lora_up.weight`` / ``.lora_down.weight`` (``.alpha``, ``.lora_mid.weight``, ``.dora_scale``
  optional): ``patches[model key] = ("lora", (up, down, alpha, mid, dora_scale))`` holding the
  dict's own tensors; returns ``(patches, the keys it did not use)``. Left out: LoHa, LoKr, GLoRA,
  diff/set patches.
* ``LoraLoader.refresh``: when the set of patch identifiers changed, put back the backed-up
  weights, then merge every patch into its weight (``merge_lora_to_weight``, "lora" only:
  ``w += strength * alpha / rank * up @ down`` in float32). Left out: online LoRA, quantised
  weights.
"""

import torch

CPU = torch.device("cpu")


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


def load_lora(lora, to_load):
    patch_dict = {}
    loaded_keys = set()
    for x in to_load:
        alpha_name = f"{x}.alpha"
        alpha = None
        if alpha_name in lora.keys():
            alpha = lora[alpha_name].item()
            loaded_keys.add(alpha_name)
        dora_scale_name = f"{x}.dora_scale"
        dora_scale = None
        if dora_scale_name in lora.keys():
            dora_scale = lora[dora_scale_name]
            loaded_keys.add(dora_scale_name)
        up_name, down_name, mid_name = f"{x}.lora_up.weight", f"{x}.lora_down.weight", f"{x}.lora_mid.weight"
        if up_name in lora.keys():
            mid = None
            if mid_name in lora.keys():
                mid = lora[mid_name]
                loaded_keys.add(mid_name)
            patch_dict[to_load[x]] = ("lora", (lora[up_name], lora[down_name], alpha, mid, dora_scale))
            loaded_keys.add(up_name)
            loaded_keys.add(down_name)
    remaining_dict = {x: y for x, y in lora.items() if x not in loaded_keys}
    return patch_dict, remaining_dict


def merge_lora_to_weight(patches, weight, key="online_lora", computation_dtype=torch.float32):
    weight_dtype_backup = weight.dtype
    weight = weight.clone() if computation_dtype == weight.dtype else weight.to(dtype=computation_dtype)
    for strength, v, strength_model, _offset, _function in patches:
        if strength_model != 1.0:
            weight *= strength_model
        patch_type, v = v
        if patch_type != "lora":
            raise NotImplementedError(f"patch type {patch_type} is not modelled")
        mat1 = v[0].to(weight.device, computation_dtype)
        mat2 = v[1].to(weight.device, computation_dtype)
        alpha = v[2] / mat2.shape[0] if v[2] is not None else 1.0
        lora_diff = torch.mm(mat1.flatten(start_dim=1), mat2.flatten(start_dim=1)).reshape(weight.shape)
        weight += ((strength * alpha) * lora_diff).type(weight.dtype)
    return weight.to(dtype=weight_dtype_backup)


def _get_attr_with_parent(obj, attr):
    parent, name = obj, None
    for name in attr.split("."):
        parent, obj = obj, getattr(obj, name)
    return parent, name, obj


class LoraLoader:
    def __init__(self, model):
        self.model = model
        self.backup = {}
        self.loaded_hash = str([])

    @torch.inference_mode()
    def refresh(self, lora_patches, offload_device=CPU, force_refresh=False):
        hashes = str(list(lora_patches.keys()))
        if hashes == self.loaded_hash and not force_refresh:
            return
        all_patches = {}
        for (_, _, _, online_mode), patches in lora_patches.items():
            for key, current_patches in patches.items():
                all_patches[(key, online_mode)] = all_patches.get((key, online_mode), []) + current_patches
        for k, w in self.backup.items():
            parent, name, _ = _get_attr_with_parent(self.model, k)
            setattr(parent, name, torch.nn.Parameter(w, requires_grad=False))
        self.backup = {}
        for (key, _online_mode), current_patches in all_patches.items():
            parent, name, weight = _get_attr_with_parent(self.model, key)
            if key not in self.backup:
                self.backup[key] = weight.to(device=offload_device)
            weight = merge_lora_to_weight(current_patches, weight, key, computation_dtype=torch.float32)
            setattr(parent, name, torch.nn.Parameter(weight, requires_grad=False))
        self.loaded_hash = hashes
