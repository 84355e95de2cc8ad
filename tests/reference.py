"""An independent, straightforward HyperLoRA computation written from the official plugin's
structure (plain loops, explicit attention, einsum mixing), reading the checkpoint files
directly. Tests compare the optimised engine against it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file


def _ln(x, w, b):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps=1e-5)


def _attn(t, p, x, ctx, heads):
    q, k, v = x @ t[p + "to_q.weight"].T, ctx @ t[p + "to_k.weight"].T, ctx @ t[p + "to_v.weight"].T
    b, n, inner = q.shape
    d = inner // heads
    q = q.view(b, n, heads, d).permute(0, 2, 1, 3)
    k = k.view(b, -1, heads, d).permute(0, 2, 1, 3)
    v = v.view(b, -1, heads, d).permute(0, 2, 1, 3)
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
    o = (w @ v).permute(0, 2, 1, 3).reshape(b, n, inner)
    return o @ t[p + "to_out.0.weight"].T


def resampler(t: dict, x: torch.Tensor, y: torch.Tensor | None, dim_head: int) -> torch.Tensor:
    """Official Resampler.forward, including the mean over images and token normalisation."""
    lin = lambda z, p: z @ t[p + ".weight"].T + t[p + ".bias"]  # noqa: E731
    latents = t["latents"].repeat(x.shape[0], 1, 1)
    x = lin(x, "proj_in")
    if y is not None:
        y = lin(y, "proj_in_2")
    depth = len({k.split(".")[1] for k in t if k.startswith("layers.")})
    heads = t["layers.0.attn1.to_q.weight"].shape[0] // dim_head
    for j in range(depth):
        p = f"layers.{j}."
        n = lambda z, name, p=p: _ln(z, t[p + name + ".weight"], t[p + name + ".bias"])  # noqa: E731
        nl = n(latents, "norm_attn1")
        latents = _attn(t, p + "attn1.", nl, nl, heads) + latents
        latents = _attn(t, p + "attn2.", n(latents, "norm_attn2_l"), n(x, "norm_attn2_x"), heads) + latents
        if y is not None:
            latents = _attn(t, p + "attn3.", n(latents, "norm_attn3_l"), n(y, "norm_attn3_y"), heads) + latents
        h = torch.nn.functional.gelu(lin(n(latents, "norm_ff"), p + "ff.net.0.proj"))
        latents = lin(h, p + "ff.net.2") + latents
    latents = lin(latents, "proj_out").mean(dim=0, keepdim=True)
    return latents * (latents.pow(2).sum(-1, keepdim=True) + 1e-8).rsqrt()


def reference_lora(folder: str | Path, clip: torch.Tensor | None, arcface: torch.Tensor | None,
                   mode: str = "id", dim_head: int = 64) -> dict[str, torch.Tensor]:
    """The official pipeline in float32: tokens -> per-module chunks -> einsum mixing ->
    ``{json_name}_{proj}`` keys (json names here are converted to compvis by the caller)."""
    folder = Path(folder)
    f32 = lambda d: {k: v.float() for k, v in d.items()}  # noqa: E731
    if mode == "base":
        tokens = resampler(f32(load_file(str(folder / "base_resampler.safetensors"))), clip, None, dim_head)
    else:
        res = f32(load_file(str(folder / "resampler.safetensors")))
        if (folder / "id_projector.safetensors").exists():
            pj = f32(load_file(str(folder / "id_projector.safetensors")))
            d = pj["2.weight"].shape[0]
            ids = arcface.view(arcface.shape[0], 1, -1) @ pj["0.weight"].T + pj["0.bias"]
            ids = ids.reshape(-1, pj["0.weight"].shape[0] // d, d)
            ids = _ln(ids, pj["2.weight"], pj["2.bias"])
            tokens = resampler(res, ids, clip, dim_head)
        else:
            tokens = resampler(res, clip, None, dim_head)
    return lora_from_tokens(folder, tokens, mode)


def lora_from_tokens(folder: str | Path, tokens: torch.Tensor, mode: str = "id") -> dict[str, torch.Tensor]:
    """Pooled tokens (1, Q, K) or (Q, K) -> LoRA dict by einsum with the checkpoint's bases."""
    folder = Path(folder)
    names = list(json.loads((folder / "hyper_lora_modules.json").read_text()))
    basis = {k: v.float() for k, v in load_file(str(folder / "hyper_lora_modules.safetensors")).items()}
    tokens = tokens.float().reshape(1, -1, tokens.shape[-1])
    out = {}
    chunks = tokens.chunk(len(names), dim=1)
    for i, (name, tok) in enumerate(zip(names, chunks)):
        for j, (proj, key) in enumerate(zip(("to_q", "to_k", "to_v", "to_out"), ("to_q", "to_k", "to_v", "to_out_0"))):
            down_c, up_c = tok[:, 2 * j, :], tok[:, 2 * j + 1, :]
            down = torch.einsum("bi,ijk->bjk", down_c, basis[f"{i}.{proj}.{mode}_down_basis"])[0].t()
            up = torch.einsum("bi,ijk->bjk", up_c, basis[f"{i}.{proj}.{mode}_up_basis"])[0].t()
            out[f"{name}_{key}.alpha"] = torch.tensor(float(down.shape[0]) * 0.5)
            out[f"{name}_{key}.lora_down.weight"] = down
            out[f"{name}_{key}.lora_up.weight"] = up
    return out
