"""Build a random-weight InstantID IP-Adapter for SDXL, for offline end-to-end tests.

The layout of the released ``ip-adapter.bin`` of InstantID, written as one ``.safetensors`` file with the
``image_proj.`` / ``ip_adapter.`` key prefixes both hosts split on (sd-webui-controlnet
``scripts/controlnet_model_guess.py``, Forge ``sd_forge_ipadapter/scripts/forge_ipadapter.py``):

* ``image_proj.*`` — the Resampler both hosts build for InstantID (``init_proj_instantid``): dim 1280, depth 4,
  dim_head 64, heads 20, 16 queries, a 512-d face embedding in, 2048-d tokens out, ff_mult 4.
* ``ip_adapter.{2n+1}.to_k_ip.weight`` / ``.to_v_ip.weight`` — ``[channels, 2048]`` for the 70 SDXL cross
  attentions, numbered as both hosts patch them: input blocks 4, 5 (640 channels, depth 2), 7, 8 (1280, depth
  10), output blocks 0-2 (1280, depth 10), 3-5 (640, depth 2), then the middle block (1280, depth 10).

Neither host reads the architecture from the file: InstantID is recognised by ``instant_id`` in the file
*name* (sd-webui-controlnet ``scripts/ipadapter/ipadapter_model.py`` ``IPAdapterModel.load``; Forge by the
"InsightFace (InstantID)" preprocessor), so keep it in the name of the file or link the host sees.

Weights: linear layers ``N(0, 0.02)``, LayerNorms 1 / 0, latents ``N(0, 1) / sqrt(1280)``, the K/V projections
``N(0, 0.02)`` (so an enabled unit visibly changes the image); fp16, ~420 M parameters (~0.84 GB).

Requirements: ``torch``, ``safetensors`` (both hosts' venvs have them).

Usage::

    python tests/e2e/instantid_model.py OUT [--seed N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_files import save_safetensors_atomically

DIM, DEPTH, DIM_HEAD, HEADS, QUERIES, EMBEDDING, CONTEXT, FF_MULT = 1280, 4, 64, 20, 16, 512, 2048, 4
# (channels, how many transformer blocks) in the hosts' patch order: input 4, 5, 7, 8; output 0-5; middle
SDXL_CROSS_ATTENTIONS = [(640, 2)] * 2 + [(1280, 10)] * 2 + [(1280, 10)] * 3 + [(640, 2)] * 3 + [(1280, 10)]
STD = 0.02


def instantid_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the InstantID IP-Adapter (with the ``image_proj.`` / ``ip_adapter.`` prefixes)."""
    inner = DIM_HEAD * HEADS
    shapes: dict[str, tuple[int, ...]] = {
        "image_proj.latents": (1, QUERIES, DIM),
        "image_proj.proj_in.weight": (DIM, EMBEDDING), "image_proj.proj_in.bias": (DIM,),
        "image_proj.proj_out.weight": (CONTEXT, DIM), "image_proj.proj_out.bias": (CONTEXT,),
        "image_proj.norm_out.weight": (CONTEXT,), "image_proj.norm_out.bias": (CONTEXT,),
    }
    for i in range(DEPTH):
        a, f = f"image_proj.layers.{i}.0.", f"image_proj.layers.{i}.1."
        shapes.update({
            a + "norm1.weight": (DIM,), a + "norm1.bias": (DIM,), a + "norm2.weight": (DIM,), a + "norm2.bias": (DIM,),
            a + "to_q.weight": (inner, DIM), a + "to_kv.weight": (inner * 2, DIM), a + "to_out.weight": (DIM, inner),
            f + "0.weight": (DIM,), f + "0.bias": (DIM,),
            f + "1.weight": (DIM * FF_MULT, DIM), f + "3.weight": (DIM, DIM * FF_MULT),
        })
    number = 0
    for channels, depth in SDXL_CROSS_ATTENTIONS:
        for _ in range(depth):
            for kv in ("k", "v"):
                shapes[f"ip_adapter.{number * 2 + 1}.to_{kv}_ip.weight"] = (channels, CONTEXT)
            number += 1
    assert number == 70, number
    return shapes


def build_instantid(out: Path, seed: int = 0) -> Path:
    """Write the random InstantID IP-Adapter to ``out`` (atomically); skip if it exists."""
    out = Path(out)
    if out.exists():
        return out
    import torch

    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in instantid_shapes().items():
        if key.endswith("latents"):
            tensor = torch.randn(shape, generator=gen) / DIM ** 0.5
        elif len(shape) == 1:  # LayerNorm weights 1, every bias 0
            is_norm_weight = key.endswith(".weight")
            tensor = torch.ones(shape) if is_norm_weight else torch.zeros(shape)
        else:
            tensor = torch.randn(shape, generator=gen) * STD
        state[key] = tensor.to(torch.float16).contiguous()
    return save_safetensors_atomically(state, out, f"random InstantID IP-Adapter (SDXL), seed {seed}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output .safetensors path")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(build_instantid(args.out, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
