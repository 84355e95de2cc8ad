"""The ``<hyperlora:NAME:w[:b]>`` prompt tag, trigger words and the infotext entry.

Host-independent: the WebUI's extra-networks parser hands us ``positional`` (the ``:``-separated
items) and ``named`` (``key=value`` items) of each tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TAG = "hyperlora"
TRIGGER_WORDS = ("fcsks", "fxhks", "fhyks")
INFOTEXT_KEY = "HyperLoRA"
MAX_WEIGHT = 10.0


@dataclass(frozen=True)
class TagRequest:
    """One tag: identity ``name``, LoRA ``weight`` (unet multiplier) and Base-LoRA weight ``base``."""

    name: str
    weight: float = 1.0
    base: float = 0.0


def _number(text: str, what: str, tag: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{tag}: {what} {text!r} is not a number") from None
    if not abs(value) <= MAX_WEIGHT:  # also rejects nan
        raise ValueError(f"{tag}: {what} {value} is out of range (-{MAX_WEIGHT}..{MAX_WEIGHT})")
    return value


def parse_tag(positional: list[str], named: dict[str, str] | None = None,
              default_weight: float = 1.0) -> TagRequest:
    """``<hyperlora:NAME[:w[:b]]>`` or ``<hyperlora:NAME:w:base=b>`` -> TagRequest.

    Raises ``ValueError`` with a message that quotes the tag.
    """
    named = dict(named or {})
    tag = "<" + ":".join([TAG, *map(str, positional), *(f"{k}={v}" for k, v in named.items())]) + ">"
    if not positional or not str(positional[0]).strip():
        raise ValueError(f"{tag}: give an identity name, e.g. <{TAG}:alice:0.85>")
    if len(positional) > 3:
        raise ValueError(f"{tag}: too many values; the form is <{TAG}:NAME:weight:base_weight>")
    unknown = set(named) - {"base", "w", "weight"}
    if unknown:
        raise ValueError(f"{tag}: unknown option(s) {', '.join(sorted(unknown))}; only base= is known")
    weight = _number(positional[1], "weight", tag) if len(positional) > 1 else default_weight
    for key in ("w", "weight"):
        if key in named:
            weight = _number(named[key], "weight", tag)
    base = _number(positional[2], "base weight", tag) if len(positional) > 2 else 0.0
    if "base" in named:
        base = _number(named["base"], "base weight", tag)
    return TagRequest(str(positional[0]).strip(), weight, base)


def format_tag(name: str, weight: float, base: float = 0.0) -> str:
    """The tag text a UI inserts, e.g. ``<hyperlora:alice:0.85>``."""
    text = f"<{TAG}:{name}:{_fmt(weight)}"
    return text + (f":{_fmt(base)}>" if base else ">")


def _fmt(value: float) -> str:
    return f"{value:.4g}"


_TRIGGER_RE = [re.compile(rf"(?<![\w]){w}(?![\w])", re.IGNORECASE) for w in TRIGGER_WORDS]


def has_trigger_words(prompt: str) -> bool:
    return all(r.search(prompt) for r in _TRIGGER_RE)


def with_trigger_words(prompt: str) -> str:
    """``prompt`` with ``fcsks fxhks fhyks, `` in front unless all three words are there already."""
    if has_trigger_words(prompt):
        return prompt
    prompt = prompt.lstrip()
    return " ".join(TRIGGER_WORDS) + (", " + prompt if prompt else "")


@dataclass(frozen=True)
class Applied:
    """One applied HyperLoRA, as recorded in the infotext."""

    name: str
    identity_hash: str
    weight: float
    base: float
    variant: str

    def describe(self) -> str:
        base = f", base {_fmt(self.base)}" if self.base else ""
        return f"{self.name} ({self.identity_hash}): {_fmt(self.weight)}{base}, {self.variant}"


_APPLIED_RE = re.compile(r"^(?P<name>.+?) \((?P<hash>[0-9a-f]{6,64})\): (?P<w>[-0-9.e]+)"
                         r"(?:, base (?P<b>[-0-9.e]+))?, (?P<variant>.+)$")


def format_infotext(applied: list[Applied]) -> str:
    """Infotext value, e.g. ``alice (3f2a9c1b2d4e): 0.85, sdxl_hyper_id_lora_v1_fidelity``; entries
    separated by ``; ``. The WebUI quotes values that contain commas."""
    return "; ".join(a.describe() for a in applied)


def parse_infotext(text: str) -> list[Applied]:
    """Inverse of ``format_infotext``; entries that do not parse are skipped."""
    out = []
    for part in str(text).strip().strip('"').split("; "):
        m = _APPLIED_RE.match(part.strip())
        if m:
            out.append(Applied(m["name"], m["hash"], float(m["w"]), float(m["b"] or 0), m["variant"]))
    return out
