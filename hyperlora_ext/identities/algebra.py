"""Identity algebra: mixes (interpolation) and sliders built from identities of one model.

**Mix** ``0.6*alice + 0.4*bob`` (positive factors w_i): tokens = per-token L2-normalised
weighted mean sum_i w_i t_i / sum_i w_i, exactly how ``pool_tokens`` averages several photos
(equal factors = ``pool_tokens`` of the identities' tokens). Base tokens are mixed the same way
when every input has them (else the mix has none); the reference embedding is the normalised
weighted mean of the inputs' normalised embeddings when every input has one. A mix is an
ordinary identity (one rank-8 LoRA).

**Slider** ``smiling - neutral``: the official workflow applies identity A at +w and B at -w.
A LoRA delta up @ down is bilinear in the coefficients (down = sum_k c_k down_basis_k, up
likewise), so LoRA(A) - LoRA(B) is *not* the LoRA of the coefficient difference. A slider
therefore keeps both token sets (``tokens`` = A, ``negative_tokens`` = B) and expands, by rank
concatenation, to one LoRA whose delta is exactly delta(A) - delta(B) per layer:
down = [down_A; -down_B] (2r, in), up = [up_A, up_B] (out, 2r), alpha doubled with the rank so
alpha / rank stays 1/2 (``lora.merge_loras(lora_A, lora_B, -1)``). At prompt weight w it
applies A at +w and B at -w. ``HyperLoRAModel.expand`` does this expansion for every identity,
plain or slider.

Expressions (``parse_mix``): terms joined by ``+``, each ``NAME`` or ``FACTOR*NAME`` with a
positive decimal factor; or exactly ``NAME - NAME`` (a minus surrounded by spaces, since names
may contain hyphens) for a slider, without factors — its strength is the LoRA weight.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch

from ..errors import HyperLoRAError
from .identity import Identity, Parent, pool_tokens

_OPERATOR = re.compile(r"(\+|(?<=\s)-(?=\s))")
_FACTOR = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$")


@dataclass(frozen=True)
class MixExpression:
    """A parsed expression: ``kind`` "mix" or "slider"; ``terms`` (name, factor) in order
    (slider: ((A, 1.0), (B, -1.0)))."""

    kind: str
    terms: tuple[tuple[str, float], ...]

    def __str__(self) -> str:
        if self.kind == "slider":
            return f"{self.terms[0][0]} - {self.terms[1][0]}"
        return " + ".join(f"{f:g}*{n}" for n, f in self.terms)


def _term(text: str, expression: str) -> tuple[str, float, bool]:
    """``FACTOR*NAME`` or ``NAME`` -> (name, factor, factor given)."""
    factor_text, star, name = text.partition("*")
    if not star:
        factor_text, name = "", factor_text
    name = name.strip()
    if not name:
        raise HyperLoRAError(f"{expression!r}: a term has no identity name (write e.g. 0.6*alice + 0.4*bob)")
    if "*" in name:
        raise HyperLoRAError(f"{expression!r}: {text.strip()!r} has more than one '*'")
    if re.search(r"\s-|-\s", name):
        raise HyperLoRAError(f"{expression!r}: in {name!r} a '-' next to a space is ambiguous; a slider is "
                             "'A - B' (spaces on both sides), names may contain '-' only without spaces")
    if not star:
        return name, 1.0, False
    factor_text = factor_text.strip()
    if not _FACTOR.match(factor_text):
        raise HyperLoRAError(f"{expression!r}: {factor_text!r} before '*' is not a positive number (e.g. 0.6*{name})")
    factor = float(factor_text)
    if not (math.isfinite(factor) and factor > 0):
        raise HyperLoRAError(f"{expression!r}: the factor of {name!r} must be a positive finite number")
    return name, factor, True


def parse_mix(expression: str) -> MixExpression:
    """``"0.6*alice + 0.4*bob"`` -> mix; ``"smiling - neutral"`` -> slider. Raises
    ``HyperLoRAError`` with the reason for anything else."""
    if not isinstance(expression, str) or not expression.strip():
        raise HyperLoRAError("empty identity expression: write e.g. 0.6*alice + 0.4*bob, or smiling - neutral")
    parts = _OPERATOR.split(expression)  # term, op, term, op, ...
    terms = [_term(t, expression) for t in parts[0::2]]
    ops = parts[1::2]
    names = [n for n, _, _ in terms]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise HyperLoRAError(f"{expression!r}: {', '.join(repeated)} appears more than once; give each name once")
    if "-" not in ops:
        if len(terms) < 2:
            raise HyperLoRAError(f"{expression!r}: a mix needs two or more identities (0.6*alice + 0.4*bob)")
        return MixExpression("mix", tuple((n, f) for n, f, _ in terms))
    if ops != ["-"]:
        raise HyperLoRAError(f"{expression!r}: a slider is exactly 'A - B'; '-' cannot be combined with other terms")
    if any(given for _, _, given in terms):
        raise HyperLoRAError(f"{expression!r}: a slider 'A - B' takes no factors; set its strength with the "
                             "LoRA weight (+w / -w)")
    return MixExpression("slider", ((names[0], 1.0), (names[1], -1.0)))


def _check_same_model(identities: Sequence[Identity]) -> None:
    first = identities[0]
    for other in identities[1:]:
        if other.model_fingerprint != first.model_fingerprint:
            raise HyperLoRAError(
                f"{first.name or first.hash!r} ({first.variant}) and {other.name or other.hash!r} ({other.variant}) "
                "were made with different HyperLoRA weights; only identities of the same model combine")
    sliders = [i.name or i.hash for i in identities if i.is_slider]
    if sliders:
        raise HyperLoRAError(f"{', '.join(sliders)} is a slider; mixes and sliders are built from plain identities")


def _weighted_pool(tensors: Sequence[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """Per-token normalised weighted mean of (Q, K) tensors (``pool_tokens`` of the scaled stack)."""
    w = weights / weights.sum() * len(tensors)
    return pool_tokens(torch.stack([t.float() for t in tensors]) * w.view(-1, 1, 1))


def mix_identities(parts: Sequence[tuple[Identity, float]], name: str = "",
                   labels: Sequence[str] | None = None) -> Identity:
    """Weighted mix of identities (positive factors); see the module docstring for the math.
    ``labels``: parent names for the provenance (default: each identity's name or hash)."""
    if len(parts) < 1:
        raise HyperLoRAError("nothing to mix")
    identities = [i for i, _ in parts]
    weights = torch.tensor([float(w) for _, w in parts], dtype=torch.float64)
    if not bool(torch.isfinite(weights).all()) or bool((weights <= 0).any()):
        raise HyperLoRAError("mix factors must be positive finite numbers")
    _check_same_model(identities)
    shapes = {tuple(i.tokens.shape) for i in identities}
    if len(shapes) > 1:
        raise HyperLoRAError(f"identities have different token shapes {sorted(shapes)}")
    w32 = weights.float()
    tokens = _weighted_pool([i.tokens for i in identities], w32)
    bases = [i.base_tokens for i in identities if i.base_tokens is not None]
    base = _weighted_pool(bases, w32) if len(bases) == len(identities) else None
    embedding = None
    units = [u for u in (i.unit_embedding() for i in identities) if u is not None]
    if len(units) == len(identities):
        mean = (torch.stack(units) * (w32 / w32.sum()).view(-1, 1)).sum(dim=0)
        embedding = mean / mean.norm().clamp_min(1e-12)
    labels = list(labels) if labels is not None else [i.name or i.hash for i in identities]
    first = identities[0]
    return Identity(
        tokens=tokens, base_tokens=base, variant=first.variant, model_fingerprint=first.model_fingerprint,
        name=name, source_names=tuple(s for i in identities for s in i.source_names),
        source_digests=tuple(s for i in identities for s in i.source_digests),
        options={"algebra": "mix", "base": base is not None},
        crops=[c for i in identities for c in i.crops], embedding=embedding,
        parents=tuple(Parent(label, i.hash, float(w)) for label, (i, w) in zip(labels, parts)),
    )


def slider_identity(positive: Identity, negative: Identity, name: str = "",
                    labels: Sequence[str] | None = None) -> Identity:
    """Slider ``positive - negative``: expands to LoRA(positive) - LoRA(negative) exactly
    (base tokens kept only when both have them). No reference embedding (it is no person)."""
    _check_same_model([positive, negative])
    if positive.tokens.shape != negative.tokens.shape:
        raise HyperLoRAError("the two identities have different token shapes")
    pos_base, neg_base = positive.base_tokens, negative.base_tokens
    if pos_base is None or neg_base is None:  # base tokens only when both have them
        pos_base = neg_base = None
    both_base = pos_base is not None
    labels = list(labels) if labels is not None else [i.name or i.hash for i in (positive, negative)]
    return Identity(
        tokens=positive.tokens.float().clone(), variant=positive.variant,
        model_fingerprint=positive.model_fingerprint, name=name,
        base_tokens=None if pos_base is None else pos_base.float().clone(),
        negative_tokens=negative.tokens.float().clone(),
        negative_base_tokens=None if neg_base is None else neg_base.float().clone(),
        source_names=positive.source_names + negative.source_names,
        source_digests=positive.source_digests + negative.source_digests,
        options={"algebra": "slider", "base": both_base}, crops=list(positive.crops) + list(negative.crops),
        parents=(Parent(labels[0], positive.hash, 1.0), Parent(labels[1], negative.hash, -1.0)),
    )


def combine(expression: str | MixExpression, identities: Mapping[str, Identity], name: str = "") -> Identity:
    """Evaluate an expression over ``identities`` (expression name -> identity). Parents are
    recorded under each identity's own name (the expression's name when it has none)."""
    expr = parse_mix(expression) if isinstance(expression, str) else expression
    missing = [n for n, _ in expr.terms if n not in identities]
    if missing:
        known = ", ".join(sorted(identities)) or "none"
        raise HyperLoRAError(f"unknown identity {', '.join(map(repr, missing))} in {str(expr)!r} (known: {known})")
    chosen = [identities[n] for n, _ in expr.terms]
    labels = [i.name or n for i, (n, _) in zip(chosen, expr.terms)]
    if expr.kind == "slider":
        return slider_identity(chosen[0], chosen[1], name=name, labels=labels)
    return mix_identities([(i, f) for i, (_, f) in zip(chosen, expr.terms)], name=name, labels=labels)
