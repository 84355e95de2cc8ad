"""Tags of one generation pass -> the LoRA weights to apply, warnings and infotext entries.

Stacking: the same identity tagged more than once (at the same Base-LoRA weight) is applied once
at the sum of the tags' weights, exactly what stacking the LoRAs would do, with a note saying so;
tags of one identity at different base weights apply side by side, which is that sum too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Sequence

from ...errors import HyperLoRAError
from .identity_library import IdentityLibrary
from .lora_cache import LoRACache, LoRAWeights
from .tags import Applied, TagRequest


@dataclass
class Resolution:
    """What a generation's tags resolve to: weights to apply (with their tag), warnings for
    the generation's comments, and the infotext entries."""

    weights: list[tuple[TagRequest, LoRAWeights]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)


def resolve_tags(requests: Sequence[TagRequest], library: IdentityLibrary, loras: LoRACache) -> Resolution:
    """Never raises for a bad tag: unknown names, damaged files and missing models become warnings."""
    out = Resolution()
    slots: dict[tuple[str, float], int] = {}  # (hash, base) -> index in out.weights
    parts: dict[int, list[float]] = {}
    for req in requests:
        try:
            identity = library.get(req.name)
        except KeyError:
            known = ", ".join(library.store.names()[:10]) or "none yet"
            out.warnings.append(f"HyperLoRA: no identity named {req.name!r} (known: {known}); tag ignored")
            continue
        except HyperLoRAError as exc:
            out.warnings.append(f"HyperLoRA: {exc}; tag ignored")
            continue
        base = req.base
        if base and not identity.has_base:
            out.warnings.append(f"HyperLoRA: {identity.name!r} has no Base-LoRA (the checkpoint "
                                f"{identity.variant} provides none); base weight {base:g} ignored")
            base = 0.0
        slot = slots.get((identity.hash, base))
        if slot is not None:
            parts[slot].append(req.weight)
            total = math.fsum(parts[slot])
            out.weights[slot] = (replace(out.weights[slot][0], weight=total), out.weights[slot][1])
            out.applied[slot] = replace(out.applied[slot], weight=total)
            continue
        try:
            weights = loras.lora(identity, base)
        except HyperLoRAError as exc:
            out.warnings.append(f"HyperLoRA: {exc}; tag ignored")
            continue
        slots[(identity.hash, base)] = len(out.weights)
        parts[len(out.weights)] = [req.weight]
        out.weights.append((req, weights))
        out.applied.append(Applied(identity.name, identity.hash, req.weight, base, identity.variant))
    for slot, weights_of_tags in parts.items():
        if len(weights_of_tags) > 1:
            sums = " + ".join(f"{w:g}" for w in weights_of_tags)
            out.warnings.append(f"HyperLoRA: {out.applied[slot].name!r} is tagged {len(weights_of_tags)} times; "
                                f"applied once at the sum of the weights, {sums} = {out.applied[slot].weight:g}")
    return out
