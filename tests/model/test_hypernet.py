"""``model.hypernet``: the plain network pieces; here the basis banks' copies between devices."""

from __future__ import annotations

import torch
from torch.overrides import TorchFunctionMode

from hyperlora_ext.model.hypernet import BasisBank, LayerShape


class Copies(TorchFunctionMode):
    """Every ``Tensor.to`` call made inside the block: (target device, non_blocking)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, bool]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.to:
            target = kwargs.get("device", args[1] if len(args) > 1 else None)
            self.seen.append((str(target), bool(kwargs.get("non_blocking", False))))
        return func(*args, **kwargs)


def test_a_bank_copied_to_the_cpu_is_never_copied_asynchronously():
    """#26 A7: a non-blocking copy from a GPU to the CPU lands in pinned memory (torch's ``_to_copy`` pins
    its output when ``non_blocking`` and the source is CUDA), which torch's pinned-host cache keeps after
    the tensors are freed: about 3 GB after an offloaded model is unloaded. Copies to the CPU block."""
    bank = BasisBank([LayerShape(8, 16), LayerShape(16, 16)], hyper_dim=4, rank=2, dtype=torch.float16)
    with Copies() as copies:
        bank.to("cpu")
    assert copies.seen and all(device == "cpu" for device, _ in copies.seen)
    assert not any(non_blocking for _, non_blocking in copies.seen), copies.seen
