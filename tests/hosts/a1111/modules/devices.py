"""Fake of A1111 v1.10.1@82a973c ``modules/devices.py``: ``cpu``, ``device`` (the generation device; CPU
here) and ``dtype``, the UNet's dtype, float16 unless ``--no-half`` (the Lora extension casts
each network's weights to it)."""

import torch

cpu = torch.device("cpu")
device = torch.device("cpu")
dtype = torch.float16


def torch_gc():
    pass


def cond_cast_unet(input):
    return input
