"""The HyperLoRA hypernetwork: ID projector, perceiver resampler and LoRA basis mixing.

Parameter names match the official checkpoint files exactly, so ``load_state_dict``
takes the released ``resampler.safetensors`` / ``id_projector.safetensors`` as they are.

Shapes (released SDXL checkpoints): ArcFace embedding (N, 512) -> ID tokens (N, 16, 1024);
CLIP penultimate hidden states (N, 257, 1024); resampler output (N, Q, K) with
Q = 8 x modules = 1120 and K (hyper dim) = 128; pooled coefficient tokens (Q, K).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ResamplerSpec:
    """Sizes of a resampler, all inferred from its weights."""

    dim: int  # latent width (1024)
    depth: int  # number of perceiver blocks (4)
    heads: int  # attention heads (12)
    dim_head: int  # width of one head (64)
    ff_mult: int  # feed-forward expansion (4)
    num_queries: int  # latent tokens = 8 x modules (1120)
    embedding_dim: int  # width of the first condition, via proj_in
    embedding_dim_2: int | None  # width of the second condition (proj_in_2), None if absent
    output_dim: int  # hyper dim K (128)


class Attention(nn.Module):
    """Multi-head attention without biases (diffusers ``Attention`` key layout)."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim, bias=False)])

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, t.shape[1], self.heads, -1).transpose(1, 2)

        q, k, v = split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context))
        out = F.scaled_dot_product_attention(q, k, v)  # softmax scale 1/sqrt(dim_head)
        return self.to_out[0](out.transpose(1, 2).reshape(b, n, -1))


class _GELUProj(nn.Module):
    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x))  # exact (erf) GELU


class FeedForward(nn.Module):
    """Linear -> GELU -> Linear with diffusers key names (``net.0.proj``, ``net.2``)."""

    def __init__(self, dim: int, mult: int) -> None:
        super().__init__()
        self.net = nn.ModuleList([_GELUProj(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class PerceiverBlock(nn.Module):
    """Pre-norm self-attention, cross-attention to x (and to y), feed-forward; all residual."""

    def __init__(self, dim: int, heads: int, dim_head: int, ff_mult: int, two_conditions: bool) -> None:
        super().__init__()
        self.norm_attn1 = nn.LayerNorm(dim)
        self.norm_attn2_l = nn.LayerNorm(dim)
        self.norm_attn2_x = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, dim_head)
        self.attn2 = Attention(dim, heads, dim_head)
        if two_conditions:
            self.norm_attn3_l = nn.LayerNorm(dim)
            self.norm_attn3_y = nn.LayerNorm(dim)
            self.attn3 = Attention(dim, heads, dim_head)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff_mult)

    def self_attention(self, latents: torch.Tensor) -> torch.Tensor:
        normed = self.norm_attn1(latents)
        return self.attn1(normed, normed) + latents

    def forward(
        self, x: torch.Tensor, latents: torch.Tensor, y: torch.Tensor | None, skip_self_attention: bool = False
    ) -> torch.Tensor:
        if not skip_self_attention:
            latents = self.self_attention(latents)
        latents = self.attn2(self.norm_attn2_l(latents), self.norm_attn2_x(x)) + latents
        if y is not None:
            latents = self.attn3(self.norm_attn3_l(latents), self.norm_attn3_y(y)) + latents
        return self.ff(self.norm_ff(latents)) + latents


class Resampler(nn.Module):
    """Perceiver resampler: conditions -> per-image LoRA coefficient tokens (N, Q, K).

    ``forward`` returns the tokens of every image before pooling; ``identities.identity.pool_tokens``
    averages them over the images and L2-normalises each token, as the official model does.
    """

    def __init__(self, spec: ResamplerSpec) -> None:
        super().__init__()
        self.spec = spec
        self.latents = nn.Parameter(torch.zeros(1, spec.num_queries, spec.dim))
        self.proj_in = nn.Linear(spec.embedding_dim, spec.dim)
        if spec.embedding_dim_2 is not None:
            self.proj_in_2 = nn.Linear(spec.embedding_dim_2, spec.dim)
        self.proj_out = nn.Linear(spec.dim, spec.output_dim)
        self.layers = nn.ModuleList(
            PerceiverBlock(spec.dim, spec.heads, spec.dim_head, spec.ff_mult, spec.embedding_dim_2 is not None)
            for _ in range(spec.depth)
        )
        # The first self-attention sees only the learned latents, so it is input-independent:
        # ``precompute`` caches its result once the weights are loaded.
        self.register_buffer("_first_latents", None, persistent=False)

    @torch.no_grad()
    def precompute(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        """Cache the input-independent first self-attention. Call after loading weights.

        Computed in ``dtype`` on ``device`` (float32 on the CPU: the same values wherever the weights
        rest, ``placement``) from copies of the few weights it needs, and stored in the latents' dtype
        and device, (1, Q, dim)."""
        block = cast(PerceiverBlock, self.layers[0])
        norm = copy.deepcopy(block.norm_attn1).to(device, dtype)
        attn = copy.deepcopy(block.attn1).to(device, dtype)
        latents = self.latents.detach().to(device, dtype)
        normed = norm(latents)
        first = attn(normed, normed) + latents
        self._first_latents = first.to(self.latents.device, self.latents.dtype)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        n = x.shape[0]
        cached = self._first_latents is not None
        latents = (self._first_latents if cached else self.latents).expand(n, -1, -1)
        x = self.proj_in(x)
        if y is not None:
            y = self.proj_in_2(y)
        for i, layer in enumerate(self.layers):
            latents = layer(x, latents, y, skip_self_attention=cached and i == 0)
        return self.proj_out(latents)


class IDProjector(nn.Module):
    """ArcFace embedding (N, E) -> ID tokens (N, T, D): Linear, reshape, LayerNorm."""

    def __init__(self, embed_dim: int, num_tokens: int, token_dim: int) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.token_dim = token_dim
        # Indices 0 and 2 match the official nn.Sequential(Linear, Reshape, LayerNorm).
        self.add_module("0", nn.Linear(embed_dim, num_tokens * token_dim))
        self.add_module("2", nn.LayerNorm(token_dim))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        tokens = getattr(self, "0")(embeddings.reshape(embeddings.shape[0], -1))
        return getattr(self, "2")(tokens.view(-1, self.num_tokens, self.token_dim))


@dataclass(frozen=True)
class LayerShape:
    """One LoRA target layer: its down basis is (K, in, rank), its up basis (K, rank, out)."""

    in_features: int
    out_features: int


class BasisBank:
    """All basis tensors of one kind (``id`` or ``base``), stacked by shape for fast mixing.

    Layer ``l`` (module ``l // 4``, projection ``l % 4`` in q, k, v, out order) owns
    coefficient tokens ``2l`` (down) and ``2l + 1`` (up). Mixing is one batched
    matrix-vector product per distinct shape, which streams each basis once from memory.
    """

    def __init__(self, layers: list[LayerShape], hyper_dim: int, rank: int, dtype: torch.dtype,
                 device: torch.device | str = "cpu") -> None:
        self.layers = layers
        self.hyper_dim = hyper_dim
        self.rank = rank
        # (kind, features) -> (layer indices, stacked basis (G, K, features * rank))
        self.groups: dict[tuple[str, int], tuple[list[int], torch.Tensor]] = {}
        for kind in ("down", "up"):
            by_size: dict[int, list[int]] = {}
            for i, shape in enumerate(layers):
                size = shape.in_features if kind == "down" else shape.out_features
                by_size.setdefault(size, []).append(i)
            for size, indices in by_size.items():
                stack = torch.empty(len(indices), hyper_dim, size * rank, dtype=dtype, device=device)
                self.groups[(kind, size)] = (indices, stack)
        self._slot: dict[tuple[str, int], tuple[tuple[str, int], int]] = {}
        for key, (indices, _) in self.groups.items():
            for j, i in enumerate(indices):
                self._slot[(key[0], i)] = (key, j)

    def fill(self, layer: int, kind: str, basis: torch.Tensor) -> None:
        """Copy one official basis tensor ((K, in, r) for down, (K, r, out) for up) into place."""
        key, j = self._slot[(kind, layer)]
        self.groups[key][1][j].copy_(basis.reshape(self.hyper_dim, -1))

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> BasisBank:
        """Move the stacks to ``device``; ``non_blocking`` only towards a GPU (``placement``: a
        non-blocking copy to the CPU lands in pinned memory)."""
        for key, (idx, stack) in self.groups.items():
            self.groups[key] = (idx, stack.to(device, non_blocking=non_blocking))
        return self

    @property
    def device(self) -> torch.device:
        return next(iter(self.groups.values()))[1].device

    @property
    def nbytes(self) -> int:
        return sum(s.numel() * s.element_size() for _, s in self.groups.values())

    @torch.no_grad()
    def mix(self, tokens: torch.Tensor, out_device: torch.device | str | None = None
            ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Coefficient tokens (2 x layers, K) -> per layer (down (r, in), up (out, r)).

        Each returned tensor is contiguous (a view of a per-group buffer), on ``out_device``
        (default: the bank's); each group moves there in one copy. The mix runs in the bank's
        dtype (GPUs; a bf16 bank on CPUs with bf16 units, whose kernels accumulate in float32)
        except for a float16 bank on the CPU, where float16 matmuls are slow: it is widened to
        float32 a few layers at a time (``CPU_WIDEN_BYTES`` of scratch) and mixed in float32.
        """
        stack_dtype = next(iter(self.groups.values()))[1].dtype
        widen = self.device.type == "cpu" and stack_dtype == torch.float16
        tokens = tokens.to(self.device, torch.float32 if widen else stack_dtype)
        downs: list[torch.Tensor | None] = [None] * len(self.layers)
        ups: list[torch.Tensor | None] = [None] * len(self.layers)
        for (kind, size), (indices, stack) in self.groups.items():
            index = torch.tensor(indices, device=tokens.device)
            coeffs = tokens[2 * index + (0 if kind == "down" else 1)].unsqueeze(1)  # (G, 1, K)
            mixed = _widening_bmm(coeffs, stack) if widen else torch.bmm(coeffs, stack)  # (G, 1, size * r)
            if kind == "down":  # (G, in, r) -> (G, r, in)
                out = mixed.view(len(indices), size, self.rank).transpose(1, 2).contiguous()
            else:  # (G, r, out) -> (G, out, r)
                out = mixed.view(len(indices), self.rank, size).transpose(1, 2).contiguous()
            if out_device is not None:
                out = out.to(out_device)
            target = downs if kind == "down" else ups
            for j, i in enumerate(indices):
                target[i] = out[j]
        return list(zip(downs, ups))  # type: ignore[arg-type]  # every layer is in one group: all filled


CPU_WIDEN_BYTES = 4 << 20  # float32 scratch per step of _widening_bmm: about the CPU's L2/L3 share


def _widening_bmm(coeffs: torch.Tensor, stack: torch.Tensor) -> torch.Tensor:
    """``bmm(coeffs (G, 1, K) float32, stack (G, K, N) 16-bit)`` in float32, widening ``stack`` a
    few slices at a time into a reused cache-sized buffer (never a float32 copy of the stack)."""
    groups, k, n = stack.shape
    out = torch.empty(groups, 1, n, dtype=torch.float32)
    step = max(1, CPU_WIDEN_BYTES // (k * n * 4))
    scratch = torch.empty(min(step, groups), k, n, dtype=torch.float32)
    for start in range(0, groups, step):
        stop = min(start + step, groups)
        wide = scratch[: stop - start]
        wide.copy_(stack[start:stop])
        torch.bmm(coeffs[start:stop], wide, out=out[start:stop])
    return out
