"""Fake of ``modules/devices.py`` of the ``ldm_patched`` hosts: ``device`` is the memory manager's torch device
(the CPU with ``--always-cpu``)."""

import torch
from ldm_patched.modules import model_management

cpu = torch.device("cpu")
device = model_management.get_torch_device()
dtype = torch.float16
