"""Build a full-size, random-weight SDXL checkpoint for offline end-to-end tests.

The model is instantiated on the ``meta`` device from the WebUI's own
``repositories/generative-models/configs/inference/sd_xl_base.yaml`` so the key layout is exactly the one the
WebUI expects (``model.diffusion_model.*``, ``conditioner.embedders.0.transformer.*``,
``conditioner.embedders.1.model.*``, ``first_stage_model.*``); the tensors are then generated one at a time and
streamed into a ``.safetensors`` file (fp16, ~6.9 GB), so peak RAM stays small.

Weights are small (normal, std 0.02), biases are zero and normalisation weights are one, so generations stay finite.

Requirements: run with the WebUI's Python, with ``repositories/generative-models`` (the ``sgm`` package) importable,
plus ``torch``, ``omegaconf``, ``transformers`` and ``open_clip`` (``open-clip-torch``). No network access and no
Hugging Face cache are needed: the CLIP tokenizer/text-model and OpenCLIP loaders are stubbed while instantiating.

Usage::

    python tests/e2e/sdxl_checkpoint.py CONFIG_YAML OUT
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import torch

PREFIXES = (
    "model.diffusion_model.",
    "conditioner.embedders.0.transformer.",
    "conditioner.embedders.1.model.",
    "first_stage_model.",
)
NORM_TYPES = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)
DTYPE_NAMES = {torch.float16: "F16", torch.float32: "F32", torch.int64: "I64"}
WEIGHT_STD = 0.02


@contextlib.contextmanager
def _offline_encoders() -> Iterator[None]:
    """Stub the pretrained loaders of the SDXL text encoders so nothing is downloaded or read from a hub cache."""
    import open_clip
    import transformers

    def clip_text_model(*_args: object, **_kwargs: object) -> transformers.CLIPTextModel:
        # openai/clip-vit-large-patch14 text tower
        config = transformers.CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            projection_dim=768,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
        )
        return transformers.CLIPTextModel(config)

    create_model_and_transforms = open_clip.create_model_and_transforms

    def open_clip_model(*args: object, **kwargs: object) -> object:
        kwargs.update(pretrained=None, device=torch.device("meta"))
        return create_model_and_transforms(*args, **kwargs)

    with (
        mock.patch.object(transformers.CLIPTokenizer, "from_pretrained", lambda *_a, **_k: None),
        mock.patch.object(transformers.CLIPTextModel, "from_pretrained", clip_text_model),
        mock.patch.object(open_clip, "create_model_and_transforms", open_clip_model),
    ):
        yield


def _meta_model(config_yaml: Path) -> torch.nn.Module:
    from omegaconf import OmegaConf
    from sgm.util import instantiate_from_config

    config = OmegaConf.load(config_yaml)
    # The denoiser holds no weights but computes its sigma schedule through numpy, which fails on ``meta``.
    config.model.params.denoiser_config = {"target": "torch.nn.Identity"}
    with _offline_encoders(), torch.device("meta"):
        return instantiate_from_config(config.model)


def _random_tensor(name: str, meta: torch.Tensor, is_norm: bool, gen: torch.Generator) -> torch.Tensor:
    if name.endswith("position_ids"):
        return torch.arange(meta.shape[-1], dtype=torch.int64).expand(meta.shape).contiguous()
    if not meta.is_floating_point():
        raise ValueError(f"no recipe for non-float tensor {name} ({meta.dtype})")
    if name.endswith("bias"):
        return torch.zeros(meta.shape, dtype=torch.float16)
    if is_norm:
        return torch.ones(meta.shape, dtype=torch.float16)
    return (torch.randn(meta.shape, generator=gen) * WEIGHT_STD).to(torch.float16)


def _tensor_specs(model: torch.nn.Module) -> list[tuple[str, torch.Tensor, bool]]:
    norm_params = {
        f"{module_name}.weight" for module_name, module in model.named_modules() if isinstance(module, NORM_TYPES)
    }
    specs = [
        (name, tensor, name in norm_params)
        for name, tensor in model.state_dict(keep_vars=True).items()
        if name.startswith(PREFIXES)
    ]
    if not specs:
        raise ValueError("the config produced no tensors under the expected SDXL prefixes")
    return specs


def _out_dtype(name: str, meta: torch.Tensor) -> torch.dtype:
    return torch.int64 if name.endswith("position_ids") or not meta.is_floating_point() else torch.float16


def build_random_sdxl(config_yaml: Path, out: Path, seed: int = 0) -> Path:
    """Write a random-weight SDXL checkpoint for ``config_yaml`` to ``out`` (atomically); skip if it exists."""
    out = Path(out)
    if out.exists():
        return out
    specs = _tensor_specs(_meta_model(Path(config_yaml)))

    header: dict[str, object] = {"__metadata__": {"format": "pt", "note": f"random SDXL weights, seed {seed}"}}
    offset = 0
    for name, meta, _ in specs:
        dtype = _out_dtype(name, meta)
        nbytes = meta.numel() * torch.empty((), dtype=dtype).element_size()
        header[name] = {
            "dtype": DTYPE_NAMES[dtype],
            "shape": list(meta.shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    gen = torch.Generator().manual_seed(seed)
    try:
        with open(tmp, "wb") as fh:
            fh.write(struct.pack("<Q", len(header_bytes)))
            fh.write(header_bytes)
            for name, meta, is_norm in specs:
                tensor = _random_tensor(name, meta, is_norm, gen)
                if tensor.dtype != _out_dtype(name, meta):
                    raise AssertionError(f"{name}: dtype {tensor.dtype}")
                fh.write(tensor.contiguous().numpy().tobytes())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config_yaml", type=Path, help="path to sd_xl_base.yaml")
    parser.add_argument("out", type=Path, help="output .safetensors path")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(build_random_sdxl(args.config_yaml, args.out, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
