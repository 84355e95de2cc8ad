"""The ``<hyperlora:NAME:w[:b]>`` prompt tag (the only module that knows its syntax), the trigger
words and the infotext entry.

The hosts find extra-network tags with ``<(\\w+):([^>]+)>`` and split the body on ``:`` into items:
``positional`` ones and ``key=value`` (named) ones; they activate ours only for the keyword spelled
exactly ``hyperlora``. One case rule here, everywhere: the keyword as the hosts read it (exactly),
identity names case-insensitively (``files.name_key``, as the identity folder resolves them). ``find_tags``,
``replace_tags``, ``rename_in_prompt`` and ``put_tag`` edit prompt text and keep every other
character as it was; ``put_tags_per_face`` writes one tag per part of ADetailer's per-face prompt
(parts joined by ``[SEP]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from ...files import name_key
from ...lora import TRIGGER_WORDS

TAG = "hyperlora"
INFOTEXT_KEY = "HyperLoRA"
MAX_WEIGHT = 10.0
FACE_SEPARATOR = " [SEP] "  # ADetailer splits ad_prompt on \s*\[SEP\]\s*; detection j uses part j


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
    text = f"<{TAG}:{name}:{format_number(weight)}"
    return text + (f":{format_number(base)}>" if base else ">")


def format_number(value: float) -> str:
    """A weight as tags and the infotext write it: 4 significant digits (``0.85``, ``-1``)."""
    return f"{float(value):.4g}"


# ---- tags in prompt text ---------------------------------------------------------------------
EXTRA_NETWORK_PATTERN = re.compile(r"<(\w+):([^>]+)>")  # the hosts' re_extra_net (modules/extra_networks.py)


@dataclass(frozen=True)
class TagText:
    """One tag as written in a prompt: ``start``/``end`` offsets of ``<...>``, its ``positional`` and
    ``named`` (``key=value``) items in the order written."""

    start: int
    end: int
    positional: tuple[str, ...]
    named: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.positional[0].strip() if self.positional else ""

    def is_for(self, name: str) -> bool:
        """Whether this tag names identity ``name`` (case-insensitive, as the identity folder)."""
        return same_name(self.name, name)


def same_name(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` name one identity (``files.name_key``, the identity folder's rule)."""
    return name_key(a) == name_key(b)


def build_tag(positional: list[str] | tuple[str, ...], named: list[str] | tuple[str, ...] = ()) -> str:
    """``<hyperlora:`` + positional items, then ``key=value`` items, joined by ``:`` + ``>``."""
    return f"<{TAG}:" + ":".join([*positional, *named]) + ">"


def _tag_text(m: re.Match) -> TagText:
    items = m.group(2).split(":")
    return TagText(m.start(), m.end(), tuple(i for i in items if "=" not in i), tuple(i for i in items if "=" in i))


def find_tags(prompt: str) -> list[TagText]:
    """Every ``<hyperlora:...>`` tag in ``prompt``, in order."""
    return [_tag_text(m) for m in EXTRA_NETWORK_PATTERN.finditer(prompt or "") if m.group(1) == TAG]


def replace_tags(prompt: str, change: Callable[[TagText], str | None], first_only: bool = False) -> tuple[str, int]:
    """``prompt`` with each tag replaced by ``change(tag)`` (None keeps it); returns the new text and
    how many tags were offered to ``change`` (only the first with ``first_only``)."""
    seen = 0

    def swap(m: re.Match) -> str:
        nonlocal seen
        if m.group(1) != TAG or (first_only and seen):
            return m.group(0)
        seen += 1
        new = change(_tag_text(m))
        return m.group(0) if new is None else new

    return EXTRA_NETWORK_PATTERN.sub(swap, prompt or ""), seen


def has_tag_for(prompt: str, name: str) -> bool:
    """Whether ``prompt`` has a tag for identity ``name``."""
    return any(t.is_for(name) for t in find_tags(prompt))


def rename_in_prompt(prompt: str, old: str, new: str) -> str:
    """``prompt`` with the identity name of every tag for ``old`` set to ``new``; nothing else changes
    (weights, spacing and other tags keep every character)."""
    def rename(tag: TagText) -> str | None:
        if not tag.is_for(old):
            return None
        body = prompt[tag.start + len(TAG) + 2:tag.end - 1]
        first, sep, rest = body.partition(":")
        lead = first[:len(first) - len(first.lstrip())]
        trail = first[len(first.rstrip()):]
        return f"<{TAG}:{lead}{new}{trail}{sep}{rest}>"

    return replace_tags(prompt, rename)[0]


def put_tag(prompt: str, name: str, weight: float, base: float = 0.0) -> str:
    """``prompt`` with ``<hyperlora:name:weight[:base]>``: replaces every tag of that identity, else
    appends it after a space."""
    tag = format_tag(name, weight, base)
    out, _ = replace_tags(prompt or "", lambda t: tag if t.is_for(name) else None)
    if has_tag_for(prompt or "", name):
        return out
    return f"{out.rstrip()} {tag}".strip() if out.strip() else tag


def put_tags_per_face(prompt: str, names: Sequence[str], weight: float, base: float = 0.0, text: str = "") -> str:
    """ADetailer's per-face prompt: one part per name, joined by ``FACE_SEPARATOR``, part j starting
    with ``<hyperlora:names[j]:weight[:base]>`` (the face ADetailer handles j-th). Each part keeps the
    text of the same part of ``prompt`` without its hyperlora tags, or gets ``text`` when that is
    empty; parts of ``prompt`` beyond the names are dropped (ADetailer gives faces beyond the parts
    the last part). E.g. ``<hyperlora:alice:0.85> photo of a face [SEP] <hyperlora:bob:0.85> photo
    of a face``."""
    parts = re.split(r"\s*\[SEP\]\s*", prompt.strip()) if (prompt or "").strip() else []
    out = []
    for i, name in enumerate(names):
        own = replace_tags(parts[i], lambda t: "")[0].strip(" ,\t\r\n") if i < len(parts) else ""
        out.append(f"{format_tag(name, weight, base)} {own or text}".strip())
    return FACE_SEPARATOR.join(out)


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
        base = f", base {format_number(self.base)}" if self.base else ""
        return f"{self.name} ({self.identity_hash}): {format_number(self.weight)}{base}, {self.variant}"


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
