"""The device / dtype policy: where the hypernetwork runs and in which precision (``Precision``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Precision:
    """``compute``: dtype of CLIP, projector and resampler; ``basis``: dtype of the LoRA bases."""

    device: torch.device
    compute: torch.dtype
    basis: torch.dtype


_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
           "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def cpu_has_fast_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(device: str | torch.device = "auto", dtype: str | torch.dtype = "auto") -> Precision:
    """Pick device and dtypes. ``auto``: CUDA if available, fp16 there. On the CPU the LoRA bases
    stay in 16 bit (half the RAM of float32): bf16 on CPUs with native bf16 units (AVX512-BF16 /
    AMX), mixed by kernels that accumulate in float32, LoRA within ~0.3% of float32; elsewhere the
    released float16 values, widened to float32 for the mix (exact). The networks run in bf16 where
    the CPU has bf16 units, else float32. ``fp32`` keeps everything in float32."""
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       "cpu" if device == "auto" else device)
    if isinstance(dtype, str) and dtype != "auto" and dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; use auto, fp32, fp16 or bf16")
    chosen = None if dtype == "auto" else _DTYPES[dtype] if isinstance(dtype, str) else dtype  # None: auto
    if dev.type == "cpu":
        if chosen is None:
            if cpu_has_fast_bf16():
                return Precision(dev, torch.bfloat16, torch.bfloat16)
            return Precision(dev, torch.float32, torch.float16)
        if chosen == torch.float16:
            log.warning("HyperLoRA: fp16 networks are very slow on the CPU; using float32 (bases stay 16-bit)")
            return Precision(dev, torch.float32, torch.float16)
        return Precision(dev, chosen, chosen)
    if chosen is None:
        chosen = torch.float16
    return Precision(dev, chosen, chosen)
