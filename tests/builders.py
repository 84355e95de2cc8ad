"""Tiny real models in the official file layouts: HyperLoRA checkpoint folders and a CLIP.

Tensor names are spelled out here by hand from the official plugin's module structure (not
taken from our own modules), so loading them also checks our key layout.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from hyperlora_ext.model.sdxl_names import to_compvis

CLIP_DIM = 48  # width of the tiny test CLIP; checkpoints made for it take CLIP features this wide

# A few real SDXL module names with small feature sizes: (diffusers name, hidden, cross)
SMALL_MODULES = [
    ("down_blocks.1.attentions.0.transformer_blocks.0.attn1", 16, None),
    ("down_blocks.1.attentions.0.transformer_blocks.0.attn2", 16, 24),
    ("mid_block.attentions.0.transformer_blocks.3.attn2", 32, 24),
    ("up_blocks.0.attentions.2.transformer_blocks.9.attn1", 32, None),
]


def spell(name: str, spelling: str) -> str:
    """Write a diffusers module name in one of the three json spellings."""
    if spelling == "diffusers":
        return name + ".processor"
    if spelling == "kohya":
        return "lora_unet_" + name.replace(".", "_")
    if spelling == "compvis":
        return to_compvis(name)
    raise ValueError(spelling)


def _resampler_tensors(g: torch.Generator, dim: int, depth: int, inner: int, ff_mult: int, queries: int,
                       in_dim: int, in_dim_2: int | None, out_dim: int) -> dict[str, torch.Tensor]:
    def r(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    t = {"latents": r(1, queries, dim, scale=1.0), "proj_in.weight": r(dim, in_dim), "proj_in.bias": r(dim),
         "proj_out.weight": r(out_dim, dim), "proj_out.bias": r(out_dim)}
    if in_dim_2 is not None:
        t["proj_in_2.weight"], t["proj_in_2.bias"] = r(dim, in_dim_2), r(dim)
    norms = ["norm_attn1", "norm_attn2_l", "norm_attn2_x", "norm_ff"]
    attns = ["attn1", "attn2"]
    if in_dim_2 is not None:
        norms += ["norm_attn3_l", "norm_attn3_y"]
        attns.append("attn3")
    for j in range(depth):
        p = f"layers.{j}."
        for n in norms:
            t[p + n + ".weight"], t[p + n + ".bias"] = 1 + r(dim, scale=0.1), r(dim, scale=0.1)
        for a in attns:
            for q in ("to_q", "to_k", "to_v"):
                t[f"{p}{a}.{q}.weight"] = r(inner, dim)
            t[f"{p}{a}.to_out.0.weight"] = r(dim, inner)
        t[p + "ff.net.0.proj.weight"], t[p + "ff.net.0.proj.bias"] = r(dim * ff_mult, dim), r(dim * ff_mult)
        t[p + "ff.net.2.weight"], t[p + "ff.net.2.bias"] = r(dim, dim * ff_mult), r(dim)
    return t


def make_checkpoint(folder: str | Path, modules: list[tuple[str, int, int | None]] | None = None,
                    spelling: str = "diffusers", hyper_dim: int = 8, rank: int = 8, base: bool = False,
                    dim: int = 32, depth: int = 2, heads: int = 2, dim_head: int = 16, ff_mult: int = 2,
                    id_tokens: int = 4, id_embed: int = 512, clip_dim: int = 48, seed: int = 0,
                    dtype: torch.dtype = torch.float16, clip_only: bool = False) -> Path:
    """Write a random checkpoint folder in the official layout; returns the folder.

    ``clip_dim`` must equal the CLIP hidden size used with it. With ``dim_head != 64`` a
    ``config.json`` records the head width, as the loader expects.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    modules = modules or SMALL_MODULES
    g = torch.Generator().manual_seed(seed)
    (folder / "hyper_lora_modules.json").write_text(json.dumps(
        {spell(n, spelling): {"hidden_size": h, "cross_attention_dim": c} for n, h, c in modules}))
    basis = {}
    for i, (_, h, c) in enumerate(modules):
        for proj, in_f in zip(("to_q", "to_k", "to_v", "to_out"), (h, c or h, c or h, h)):
            for kind, r in (("id", rank), ("base", rank // 2)):
                if kind == "base" and not base:
                    continue
                basis[f"{i}.{proj}.{kind}_down_basis"] = torch.randn(hyper_dim, in_f, r, generator=g) * 0.1
                basis[f"{i}.{proj}.{kind}_up_basis"] = torch.randn(hyper_dim, r, h, generator=g) * 0.1
    save_file({k: v.to(dtype) for k, v in basis.items()}, str(folder / "hyper_lora_modules.safetensors"))
    queries, inner = 8 * len(modules), heads * dim_head
    token_dim = clip_dim  # official: embedding_dim = CLIP hidden size
    res = _resampler_tensors(g, dim, depth, inner, ff_mult, queries, clip_dim if clip_only else token_dim,
                             None if clip_only else clip_dim, hyper_dim)
    save_file({k: v.to(dtype) for k, v in res.items()}, str(folder / "resampler.safetensors"))
    if not clip_only:
        proj = {"0.weight": torch.randn(id_tokens * token_dim, id_embed, generator=g) * 0.05,
                "0.bias": torch.randn(id_tokens * token_dim, generator=g) * 0.05,
                "2.weight": 1 + torch.randn(token_dim, generator=g) * 0.1,
                "2.bias": torch.randn(token_dim, generator=g) * 0.1}
        save_file({k: v.to(dtype) for k, v in proj.items()}, str(folder / "id_projector.safetensors"))
    if base:
        res = _resampler_tensors(g, dim, depth, inner, ff_mult, queries, clip_dim, None, hyper_dim)
        save_file({k: v.to(dtype) for k, v in res.items()}, str(folder / "base_resampler.safetensors"))
    if dim_head != 64:
        (folder / "config.json").write_text(json.dumps({"resampler": {"dim_head": dim_head}}))
    return folder


def full_sdxl_modules() -> list[tuple[str, int, int | None]]:
    """The 140 SDXL UNet attention modules as (diffusers name, hidden size, cross dim or None).

    In diffusers ``attn_processors`` order (down, mid, up blocks).
    """
    layout = [  # (section, block, hidden size, attentions, transformer blocks)
        ("down_blocks", 1, 640, 2, 2),
        ("down_blocks", 2, 1280, 2, 10),
        ("mid_block", None, 1280, 1, 10),
        ("up_blocks", 0, 1280, 3, 10),
        ("up_blocks", 1, 640, 3, 2),
    ]
    modules = []
    for section, block, hidden, attentions, depth in layout:
        prefix = section if block is None else f"{section}.{block}"
        for a in range(attentions):
            for t in range(depth):
                for n, cross in ((1, None), (2, 2048)):
                    modules.append((f"{prefix}.attentions.{a}.transformer_blocks.{t}.attn{n}", hidden, cross))
    return modules


def make_clip(model_dir: str | Path, processor_dir: str | Path, hidden: int = 48, image_size: int = 64,
              patch: int = 16, layers: int = 3, seed: int = 0) -> None:
    """A tiny full CLIP (text + vision, like openai/clip-vit-large-patch14's file) and its
    image-processor config, saved as safetensors."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "vocab_size": 100, "max_position_embeddings": 16},
        vision_config={"hidden_size": hidden, "intermediate_size": 2 * hidden, "num_hidden_layers": layers,
                       "num_attention_heads": 4, "image_size": image_size, "patch_size": patch,
                       "projection_dim": 16},  # the released config.json repeats it here too
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(str(model_dir), safe_serialization=True)
    CLIPImageProcessor(size={"shortest_edge": image_size},
                       crop_size={"height": image_size, "width": image_size}).save_pretrained(str(processor_dir))
