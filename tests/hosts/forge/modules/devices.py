"""Fake of Forge@dfdcbab ``modules/devices.py``: ``device`` is the memory manager's torch device."""

import torch
from backend import memory_management

cpu = torch.device("cpu")
device = memory_management.get_torch_device()
dtype = torch.float16
