"""Fake of Forge Classic@1f95d717 ``ldm_patched/modules/model_patcher.py``: ``ModelPatcher``.

``clone()`` (L50) shares the model and its key set, copies the patch lists, and has **its own weight backups**;
``add_patches(patches, strength_patch=1.0, strength_model=1.0)`` (L191; no identifier) appends
``(strength_patch, patch, strength_model)`` under each key in ``model_keys`` and returns the keys it took.
``patch_model()`` (L225) backs up and merges each patched weight (``calculate_weight``, L271: "lora" patches,
``weight += strength * alpha / rank * up @ down`` in float32); ``unpatch_model()`` (L530) restores the backups.
Which patcher's weights are in the model is decided by ``model_management.load_models_gpu`` (another clone is
unpatched first). Left out: object patches, other patch types, moving devices."""

import torch

from ldm_patched.modules import utils


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size=0, current_device=None, weight_inplace_update=False):
        self.size = size
        self.model = model
        self.patches = {}
        self.backup = {}
        self.object_patches = {}
        self.model_options = {"transformer_options": {}}
        self.load_device = load_device
        self.offload_device = offload_device
        self.current_device = offload_device if current_device is None else current_device
        self.weight_inplace_update = weight_inplace_update
        self.model_keys = set(model.state_dict().keys())

    def clone(self):
        n = type(self)(self.model, self.load_device, self.offload_device, self.size, self.current_device,
                       weight_inplace_update=self.weight_inplace_update)
        n.patches = {k: v[:] for k, v in self.patches.items()}
        n.object_patches = self.object_patches.copy()
        n.model_options = dict(self.model_options)
        n.model_keys = self.model_keys
        return n

    def is_clone(self, other):
        return hasattr(other, "model") and self.model is other.model

    def add_patches(self, patches, strength_patch=1.0, strength_model=1.0):
        p = set()
        for k in patches:
            if k in self.model_keys:
                p.add(k)
                self.patches.setdefault(k, []).append((strength_patch, patches[k], strength_model))
        return list(p)

    @torch.inference_mode()
    def patch_model(self):
        for key, patches in self.patches.items():
            weight = utils.get_attr(self.model, key)
            if key not in self.backup:
                self.backup[key] = weight.detach().to(self.offload_device, copy=True)
            out = self.calculate_weight(patches, weight.detach().to(torch.float32, copy=True), key)
            utils.set_attr(self.model, key, out.to(weight.dtype))
        return self.model

    def calculate_weight(self, patches, weight, key):
        for alpha, (patch_type, v), strength_model in patches:
            if strength_model != 1.0:
                weight *= strength_model
            if patch_type != "lora" or v[3] is not None:
                raise NotImplementedError(f"patch type {patch_type} (or LoCon mid weights) is not modelled")
            mat1 = v[0].to(weight.device, torch.float32)
            mat2 = v[1].to(weight.device, torch.float32)
            if v[2] is not None:
                alpha *= v[2] / mat2.shape[0]
            weight += (alpha * torch.mm(mat1.flatten(start_dim=1), mat2.flatten(start_dim=1))
                       ).reshape(weight.shape).type(weight.dtype)
        return weight

    @torch.inference_mode()
    def unpatch_model(self):
        for key, weight in self.backup.items():
            utils.set_attr(self.model, key, weight.clone())
        self.backup = {}
