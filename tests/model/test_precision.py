"""The device / dtype policy (``model.precision``)."""

import pytest
import torch

from hyperlora_ext.model.precision import resolve_precision


def test_precision_policy():
    p = resolve_precision("cpu", "auto")
    assert p.basis in (torch.float16, torch.bfloat16) and p.compute in (torch.float32, torch.bfloat16)  # 16-bit bases
    assert resolve_precision("cpu", "fp16") == resolve_precision("cpu", "fp32").__class__(
        torch.device("cpu"), torch.float32, torch.float16)  # fp16 networks are slow on CPUs
    assert resolve_precision("cpu", "fp32").basis == torch.float32
    assert resolve_precision("cpu", "bf16").basis == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_precision("cpu", "int8")
