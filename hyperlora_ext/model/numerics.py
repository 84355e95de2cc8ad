"""HyperLoRA's math in its own numerics, whatever torch context the caller has active.

The WebUIs call us from inside their own torch state, and torch keeps that state per thread or per
process, so it would leak into every tensor we compute:

* A1111 activates extra networks inside ``devices.autocast()``: CPU bf16 autocast with its fp8
  weight storage, ``torch.autocast("cuda")`` in fp16 with half precision. Under autocast ``bmm`` and
  ``linear`` silently run in 16 bit, so an identity expanded inside a generation differed from the
  same identity expanded by *Save as LoRA* (and an image depended on which ran first).
* Generations run under ``torch.no_grad()`` or ``torch.inference_mode()``; tensors made in inference
  mode cannot be used in place or saved for backward later, so a cache filled there breaks others.
* A1111 turns TF32 on for CUDA matmuls/convolutions (``allow_tf32``); any host or extension may set
  ``torch.set_float32_matmul_precision`` or a default dtype.

``own_numerics()`` fixes every one of these for the duration of a call and restores the caller's
values afterwards: no autocast on any device type, gradients off and no inference mode, float32
default dtype, full float32 matmuls and convolutions (no TF32 / bf16 "fast float32"), torch's default
reduced-precision reductions. The precision of our results is then exactly the one the model chose
(``model.precision.Precision``). What we do not control: the number of threads (results of one build on
one machine are reproducible; a different thread count may change float rounding in the last bit) and
host code that moves our tensors (we hand hosts fresh CPU tensors; the hosts copy them into their own
layers). A1111's global patches while it loads a model (``Module.to`` disabled, layers on the meta
device) are avoided by taking the host's model lock before any load (``webui.host``).
"""

from __future__ import annotations

import functools
import warnings
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator, TypeVar

import torch

F = TypeVar("F", bound=Callable)


def _autocast_device_types() -> list[str]:
    types = ["cpu"]
    if torch.cuda.is_available():
        types.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        types.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        types.append("xpu")
    return types


def _precision_switches() -> list[tuple[Any, str, object]]:
    """(object, attribute, our value) for every float32-precision switch this torch has. torch 2.9+
    has per-backend ``fp32_precision`` ("ieee" = full float32) and complains when the legacy API
    (``allow_tf32``, ``set_float32_matmul_precision``) is mixed with it, so use only one of the two."""
    b = torch.backends
    new_api: list[tuple[Any, str, object]] = [(getattr(getattr(b, backend, None), op, None), "fp32_precision", "ieee")
               for backend, op in (("mkldnn", "matmul"), ("mkldnn", "conv"), ("mkldnn", "rnn"),
                                   ("cuda", "matmul"), ("cudnn", "conv"), ("cudnn", "rnn"))]
    new_api = [s for s in new_api if s[0] is not None and hasattr(s[0], "fp32_precision")]
    switches = new_api or [(b.cuda.matmul, "allow_tf32", False), (b.cudnn, "allow_tf32", False)]
    return switches + [(b.cuda.matmul, "allow_fp16_reduced_precision_reduction", True),
                       (b.cuda.matmul, "allow_bf16_reduced_precision_reduction", True)]


@contextmanager
def own_numerics() -> Iterator[None]:
    """Run the block with HyperLoRA's fixed numerics (see the module docstring); restores the
    caller's torch state on exit, also after an exception. Re-entrant."""
    switches = _precision_switches()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = [getattr(obj, attr) for obj, attr, _ in switches]
    default_dtype = torch.get_default_dtype()
    with ExitStack() as stack:
        for device_type in _autocast_device_types():
            stack.enter_context(torch.autocast(device_type=device_type, enabled=False))
        stack.enter_context(torch.inference_mode(False))
        stack.enter_context(torch.no_grad())
        try:
            torch.set_default_dtype(torch.float32)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for obj, attr, ours in switches:
                    setattr(obj, attr, ours)
            yield
        finally:
            torch.set_default_dtype(default_dtype)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for (obj, attr, _), value in zip(switches, saved):
                    setattr(obj, attr, value)


def with_own_numerics(fn: F) -> F:
    """Decorator form of ``own_numerics``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with own_numerics():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]  # wraps keeps fn's signature
