"""Fake of reForge main@3b56b268 ``ldm_patched/modules/model_patcher.py``: ``ModelPatcher``.

``clone()`` shares the model **and the weight backups** (``backup``), copies the patch lists and keeps the
``patches_uuid``; ``add_patches(patches, strength_patch=1.0, strength_model=1.0)`` (no identifier) appends
``(strength_patch, patch, strength_model, offset, function)`` under each key that is in the model's state dict,
gives the patcher a **new ``patches_uuid``** and returns the keys it took. ``patch_model()`` (what loading it for
sampling does): when the weights carry another ``patches_uuid``, restore them from the backups first; then back
up and merge each patched weight (``lora.calculate_weight``, float32) and record the uuid on the model.
``unpatch_model()`` restores the backups. Left out: object patches, hooks, wrappers, low-VRAM loading."""

import uuid

import torch

from ldm_patched.modules import lora, utils


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
        self.size = size
        self.model = model
        self.patches = {}
        self.backup = {}
        self.object_patches = {}
        self.model_options = {"transformer_options": {}}
        self.load_device = load_device
        self.offload_device = offload_device
        self.weight_inplace_update = weight_inplace_update
        self.patches_uuid = uuid.uuid4()
        self.parent = None
        if not hasattr(self.model, "current_weight_patches_uuid"):
            self.model.current_weight_patches_uuid = None

    def clone(self):
        n = self.__class__(self.model, self.load_device, self.offload_device, self.size,
                           weight_inplace_update=self.weight_inplace_update)
        n.patches = {k: v[:] for k, v in self.patches.items()}
        n.patches_uuid = self.patches_uuid
        n.object_patches = self.object_patches.copy()
        n.model_options = dict(self.model_options)
        n.backup = self.backup
        n.parent = self
        return n

    def is_clone(self, other):
        return hasattr(other, "model") and self.model is other.model

    def add_patches(self, patches, strength_patch=1.0, strength_model=1.0):
        p = set()
        model_sd = self.model.state_dict()
        for k in patches:
            offset = function = None
            if isinstance(k, str):
                key = k
            else:
                offset, key = k[1], k[0]
                if len(k) > 2:
                    function = k[2]
            if key in model_sd:
                p.add(k)
                self.patches.setdefault(key, []).append((strength_patch, patches[k], strength_model, offset, function))
        self.patches_uuid = uuid.uuid4()
        return list(p)

    @torch.inference_mode()
    def patch_model(self):
        if self.model.current_weight_patches_uuid not in (None, self.patches_uuid):
            self.unpatch_model()
        if self.model.current_weight_patches_uuid == self.patches_uuid:
            return self.model
        for key, patches in self.patches.items():
            weight = utils.get_attr(self.model, key)
            if key not in self.backup:
                self.backup[key] = weight.detach().to(self.offload_device, copy=True)
            out = lora.calculate_weight(patches, weight.detach().to(torch.float32, copy=True), key)
            utils.set_attr(self.model, key, out.to(weight.dtype))
        self.model.current_weight_patches_uuid = self.patches_uuid
        return self.model

    @torch.inference_mode()
    def unpatch_model(self):
        for key, weight in self.backup.items():
            utils.set_attr(self.model, key, weight.clone())
        self.backup.clear()
        self.model.current_weight_patches_uuid = None
