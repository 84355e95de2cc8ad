"""Build a random-weight SDXL ControlNet for offline end-to-end tests.

A diffusers ``ControlNetModel`` in the SDXL "mid" layout (the one both hosts recognise from its keys and
shapes: Forge's ``huggingface_guess`` table ``SDXL_mid_cnet``, sd-webui-controlnet's
``controlnet_sdxl_mid_config``): the SDXL UNet's down half, one transformer block at the lowest resolution and
one in the middle block (~271 M parameters, ~0.5 GB in fp16). Channels, context and ``adm`` sizes are read
from the header of the SDXL checkpoint the suite uses (``sdxl_checkpoint.py``), so the ControlNet fits it.

The zero-initialised convolutions (``controlnet_down_blocks.*``, ``controlnet_mid_block``,
``controlnet_cond_embedding.conv_out``) get small random values, so an enabled unit visibly changes the image.
Built in fp16 and written as one ``.safetensors`` file (atomically); peak RAM under 1 GB.

Requirements: ``torch``, ``diffusers`` (Forge's venv has 0.31; A1111's has none: run this with another
Python, see ``HYPERLORA_E2E_DIFFUSERS_PYTHON`` in webui_server.py), ``safetensors``.

Usage::

    python tests/e2e/controlnet_model.py SDXL_CHECKPOINT OUT [--seed N]
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path

from model_files import save_safetensors_atomically

UNET = "model.diffusion_model."
HEAD_CHANNELS = 64  # SDXL's num_head_channels (not visible in the shapes)
ZERO_CONV_STD = 0.05


def sdxl_unet_shapes(checkpoint: Path) -> dict[str, list[int]]:
    """Shapes of the UNet tensors, from the safetensors header alone (no tensor is read)."""
    with open(checkpoint, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    return {k[len(UNET):]: v["shape"] for k, v in header.items() if k.startswith(UNET)}


def controlnet_config(shapes: dict[str, list[int]]) -> dict:
    """diffusers ``ControlNetModel`` arguments: the SDXL UNet's sizes, in the "mid" transformer layout."""
    model_channels, in_channels = shapes["input_blocks.0.0.weight"][:2]
    levels, block = [], 1
    while f"input_blocks.{block}.0.out_layers.3.weight" in shapes:
        levels.append(shapes[f"input_blocks.{block}.0.out_layers.3.weight"][0])
        block += 3  # num_res_blocks (2) + the downsampler
    if not levels or levels[0] != model_channels:
        raise ValueError(f"not an SDXL UNet layout: channels {levels}, model_channels {model_channels}")
    context = next(v[1] for k, v in shapes.items() if k.endswith("attn2.to_k.weight"))
    return {
        "in_channels": in_channels,
        "block_out_channels": tuple(levels),
        "down_block_types": ("DownBlock2D",) * (len(levels) - 1) + ("CrossAttnDownBlock2D",),
        "transformer_layers_per_block": (0,) * (len(levels) - 1) + (1,),
        "attention_head_dim": tuple(c // HEAD_CHANNELS for c in levels),
        "cross_attention_dim": context,
        "use_linear_projection": True,
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 256,
        "projection_class_embeddings_input_dim": shapes["label_emb.0.0.weight"][1],
        "layers_per_block": 2,
        "conditioning_embedding_out_channels": (16, 32, 96, 256),
    }


def build_controlnet(checkpoint: Path, out: Path, seed: int = 0) -> Path:
    """Write the random ControlNet for ``checkpoint`` to ``out``; skip if it exists."""
    out = Path(out)
    if out.exists():
        return out
    import torch
    from diffusers import ControlNetModel

    config = controlnet_config(sdxl_unet_shapes(Path(checkpoint)))
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)  # initialise in fp16: half the RAM
    try:
        model = ControlNetModel(**config)
    finally:
        torch.set_default_dtype(default)
    gen = torch.Generator().manual_seed(seed + 1)
    state = {}
    for name, tensor in model.state_dict().items():
        if name.startswith(("controlnet_down_blocks.", "controlnet_mid_block.", "controlnet_cond_embedding.conv_out.")):
            tensor = (torch.randn(tensor.shape, generator=gen) * ZERO_CONV_STD).to(torch.float16)
        state[name] = tensor.to(torch.float16).contiguous()
    return save_safetensors_atomically(state, out, f"random SDXL ControlNet (mid), seed {seed}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="the SDXL checkpoint (.safetensors) the ControlNet is for")
    parser.add_argument("out", type=Path, help="output .safetensors path")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(build_controlnet(args.checkpoint, args.out, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
