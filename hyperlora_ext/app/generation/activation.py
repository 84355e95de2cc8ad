"""One activation of the ``hyperlora`` extra network, shared by both hosts.

The WebUI calls the ExtraNetwork with the tags of the pass that is starting (first pass, hires
pass, an ADetailer pass...) and ``p``, the processing object. Here: parse the tags, resolve
them through the service, add trigger words to the prompts about to be encoded, record the
infotext, and turn every problem into a comment on the generation instead of an exception.
Works on the host's ``p`` (``processing.Processing``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from ...version import __version__
from ..core.service import HyperLoRAService, Resolution
from ..core.tags import (
    INFOTEXT_KEY,
    TAG,
    find_tags,
    format_infotext,
    format_tag,
    has_tag_for,
    parse_tag,
    with_trigger_words,
)
from . import inner_passes
from .comments import comment
from .likeness_infotext import remember, start_pass
from .processing import ExtraNetworkParams, Processing

log = logging.getLogger(__name__)
HIRES_INFOTEXT_KEY = "Hires " + INFOTEXT_KEY
TRIGGER_INFOTEXT_KEY = INFOTEXT_KEY + " trigger words"
VERSION_INFOTEXT_KEY = inner_passes.VERSION_KEY  # on every image that applied an identity


def _has_tags(data: dict[str, list[ExtraNetworkParams]] | None) -> bool:
    return bool((data or {}).get(TAG))


def add_trigger_words(p: Processing) -> bool:
    """Prefix ``fcsks fxhks fhyks`` to the prompts of every pass whose tags include ours.
    Returns whether any prompt lacked them (and was changed)."""
    changed = False
    for data, attr in (("extra_network_data", "prompts"), ("hr_extra_network_data", "hr_prompts")):
        prompts = getattr(p, attr, None)
        if _has_tags(getattr(p, data, None)) and prompts:
            new = [with_trigger_words(x) for x in prompts]
            changed |= new != list(prompts)
            setattr(p, attr, new)
    return changed


def resolve_params(service: HyperLoRAService, p: Processing, params_list: Sequence[ExtraNetworkParams],
                   is_sdxl: bool) -> Resolution:
    """This pass's ``ExtraNetworkParams`` -> Resolution; warnings become comments on ``p``."""
    cfg = service.config
    start_pass(p)
    requests = []
    for params in params_list or []:
        try:
            requests.append(parse_tag(list(params.positional), dict(params.named), cfg.default_weight))
        except ValueError as exc:
            comment(p, f"HyperLoRA: {exc}; tag ignored")
    if not requests:
        return Resolution()
    if not is_sdxl:
        comment(p, "HyperLoRA: the loaded model is not SDXL; HyperLoRA tags are skipped")
        return Resolution()
    resolution = service.resolve(requests)
    for warning in resolution.warnings:
        comment(p, warning)
    remember(p, resolution.applied)
    inner_passes.record(p, resolution.applied)
    added = bool(cfg.auto_trigger_words and resolution.weights and add_trigger_words(p))
    infotext = getattr(p, "extra_generation_params", None)
    if resolution.applied and infotext is not None:
        infotext[HIRES_INFOTEXT_KEY if getattr(p, "is_hr_pass", False) else INFOTEXT_KEY] = \
            format_infotext(resolution.applied)
        infotext[VERSION_INFOTEXT_KEY] = __version__
        if added:
            infotext[TRIGGER_INFOTEXT_KEY] = "auto"
    return resolution


def run_activation(p: Processing, params_list: Sequence[ExtraNetworkParams],
                   activate: Callable[[Processing, Sequence[ExtraNetworkParams]], None],
                   on_error: Callable[[], None] | None = None) -> None:
    """Call the host's ``activate(p, params_list)``; any error becomes a comment and the
    generation goes on without HyperLoRA (``on_error`` removes whatever was placed)."""
    try:
        activate(p, params_list)
    except Exception as exc:  # a generation must never fail because of a tag
        log.exception("HyperLoRA activation failed")
        if on_error is not None:
            try:
                on_error()
            except Exception:
                log.exception("HyperLoRA: cleanup after a failed activation failed")
        comment(p, f"HyperLoRA: not applied ({type(exc).__name__}: {exc})")


def script_tag(args: Sequence[Any], default_weight: float) -> str | None:
    """The accordion's (or ``alwayson_scripts``') values -> a tag to add, or None.

    Accepts ``[enabled, identity, weight, base]`` or ``[{"enabled":..., "identity":...,
    "weight":..., "base":...}]``; raises ``ValueError`` for anything else.
    """
    if not args:
        return None
    if isinstance(args[0], dict):
        extra = set(args[0]) - {"enabled", "identity", "weight", "base"}
        if extra:
            raise ValueError(f"unknown HyperLoRA script argument(s): {', '.join(sorted(extra))}")
        d = args[0]
        args = (d.get("enabled", True), d.get("identity"), d.get("weight", default_weight), d.get("base", 0.0))
    enabled, identity, weight, base = (list(args) + [None, None, None, None])[:4]
    if not enabled:
        return None
    if not identity:
        raise ValueError("HyperLoRA is enabled but no identity is selected")
    return format_tag(str(identity), float(default_weight if weight is None else weight), float(base or 0.0))


def add_tag_to_prompts(p: Processing, tag: str) -> None:
    """Append ``tag`` to every prompt (and hires prompt) that has no tag for that identity."""
    name = find_tags(tag)[0].name
    for attr in ("all_prompts", "all_hr_prompts"):
        prompts = getattr(p, attr, None)
        if prompts:
            setattr(p, attr, [x if has_tag_for(x, name) else f"{x} {tag}" for x in prompts])

