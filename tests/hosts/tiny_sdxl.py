"""The SDXL UNet as the hosts hold it, cut down to the layers the tiny HyperLoRA checkpoints
(``tests/builders.py``: ``SMALL_MODULES``) target, plus a few they do not.

Module names follow the original (compvis) SDXL UNet that both hosts load, written out here by
hand rather than derived with our own name conversion: ``diffusion_model.input_blocks.4.1.
transformer_blocks.0.attn1.to_q`` and so on, ``to_out`` a ``Sequential(Linear, Dropout)``. The
wrapper is what A1111's ``sd_model.model`` and Forge's ``KModel`` both are: a module whose
``diffusion_model`` is the UNet.
"""

from __future__ import annotations

import torch
from torch import nn

# (attention module in the compvis UNet, hidden size, cross-attention context size or None)
ATTENTIONS = [
    ("input_blocks.4.1.transformer_blocks.0.attn1", 16, None),   # down_blocks.1.attentions.0...attn1
    ("input_blocks.4.1.transformer_blocks.0.attn2", 16, 24),     # down_blocks.1.attentions.0...attn2
    ("middle_block.1.transformer_blocks.3.attn2", 32, 24),       # mid_block.attentions.0...blocks.3.attn2
    ("output_blocks.2.1.transformer_blocks.9.attn1", 32, None),  # up_blocks.0.attentions.2...blocks.9.attn1
    ("input_blocks.5.1.transformer_blocks.0.attn1", 16, None),   # not in the checkpoints
]


class CrossAttention(nn.Module):
    def __init__(self, hidden: int, context: int | None) -> None:
        super().__init__()
        self.to_q = nn.Linear(hidden, hidden, bias=False)
        self.to_k = nn.Linear(context or hidden, hidden, bias=False)
        self.to_v = nn.Linear(context or hidden, hidden, bias=False)
        self.to_out = nn.Sequential(nn.Linear(hidden, hidden), nn.Dropout(0.0))


def _put(root: nn.Module, dotted: str, module: nn.Module) -> None:
    *parents, leaf = dotted.split(".")
    for name in parents:
        if not hasattr(root, name):
            root.add_module(name, nn.Module())
        root = getattr(root, name)
    root.add_module(leaf, module)


class DiffusionWrapper(nn.Module):
    def __init__(self, diffusion_model: nn.Module) -> None:
        super().__init__()
        self.diffusion_model = diffusion_model


def tiny_unet(seed: int = 0, dtype: torch.dtype = torch.float32) -> DiffusionWrapper:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet = nn.Module()
        _put(unet, "input_blocks.0.0", nn.Conv2d(4, 8, 3, padding=1))
        for name, hidden, context in ATTENTIONS:
            _put(unet, name, CrossAttention(hidden, context))
        _put(unet, "out.2", nn.Conv2d(8, 4, 3, padding=1))
    return DiffusionWrapper(unet).to(dtype).requires_grad_(False)
