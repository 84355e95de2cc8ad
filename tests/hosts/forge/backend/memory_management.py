"""Fake of Forge@dfdcbab ``backend/memory_management.py``: ``get_torch_device`` (the CPU here, as with
``--always-cpu``) and ``free_memory(memory_required, device, keep_loaded=[], free_all=False)``,
which unloads models until that much is free; here each request is kept in ``free_requests``."""

import torch

free_requests = []


def get_torch_device():
    return torch.device("cpu")


def free_memory(memory_required, device, keep_loaded=[], free_all=False):  # noqa: B006 (the host's signature)
    free_requests.append((memory_required, device))


def module_size(module):
    return sum(p.numel() * p.element_size() for p in module.parameters())
