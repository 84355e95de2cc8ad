"""Fake of ``ldm_patched/modules/utils.py`` (reForge main@3b56b268, Forge Classic@1f95d717): ``load_torch_file``
(a ``.safetensors`` file's tensors; the hosts also read pickles, left out) and the attribute helpers the
model patchers use to put a weight into a module."""

import safetensors.torch
import torch


def load_torch_file(ckpt, safe_load=False, device=None):
    return safetensors.torch.load_file(ckpt, device=str(device or "cpu"))


def set_attr(obj, attr, value):
    attrs = attr.split(".")
    for name in attrs[:-1]:
        obj = getattr(obj, name)
    setattr(obj, attrs[-1], torch.nn.Parameter(value, requires_grad=False))


def get_attr(obj, attr):
    for name in attr.split("."):
        obj = getattr(obj, name)
    return obj
