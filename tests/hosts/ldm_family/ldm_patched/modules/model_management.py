"""Fake of ``ldm_patched/modules/model_management.py`` (reForge main@3b56b268, Forge Classic@1f95d717): the
device (the CPU, as with ``--always-cpu``), ``free_memory(memory_required, device, keep_loaded=[])``, which
unloads models until that much is free (each request is kept in ``free_requests`` here), and
``load_models_gpu``, which loads the UNet patcher for sampling: a model loaded through another patcher is
unpatched first (Classic: ``unload_model_clones``; reForge: its weights' ``patches_uuid`` differs), then
the patcher merges its patches into the weights (``patch_model``). Left out: VRAM states, moving
models between devices, the loaded-model list's other entries."""

import torch

free_requests = []
current_loaded_models = []  # the patchers whose patches are in the weights now


def get_torch_device():
    return torch.device("cpu")


def free_memory(memory_required, device, keep_loaded=[]):  # noqa: B006 (the host's signature)
    free_requests.append((memory_required, device))


def module_size(module):
    return sum(p.numel() * p.element_size() for p in module.parameters())


def load_models_gpu(models, memory_required=0):
    for patcher in models:
        if any(loaded is patcher for loaded in current_loaded_models):
            continue
        for loaded in [m for m in current_loaded_models if m.is_clone(patcher)]:
            current_loaded_models.remove(loaded)
            loaded.unpatch_model()
        patcher.patch_model()
        current_loaded_models.insert(0, patcher)
