"""X/Y/Z plot axes: "HyperLoRA identity", "HyperLoRA weight" and "HyperLoRA base weight".

The prompt rewriting is plain functions on tag text (tested without a WebUI). ``register``
appends the axes to the host's ``scripts/xyz_grid.py`` module (found in
``modules.scripts.scripts_data``; both hosts load it under the module name ``xyz_grid.py``).
It must run before the X/Y/Z script builds its UI, which copies ``axis_options`` into its
dropdowns (``current_axis_options``, used by index, also through the API): ``on_before_ui``.
Appended axes come after the host's own and those of extensions appended earlier (Forge's
built-in ControlNet appends its axes at import), so clients look the index up by label
(``GET /sdapi/v1/script-info``: the "x/y/z plot" script's "X type" choices).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from ..core.tags import TagText, build_tag, find_tags, format_number, format_tag, replace_tags
from ..generation.processing import Processing

log = logging.getLogger(__name__)
IDENTITY_AXIS = "HyperLoRA identity"
WEIGHT_AXIS = "HyperLoRA weight"
BASE_AXIS = "HyperLoRA base weight"
LABELS = (IDENTITY_AXIS, WEIGHT_AXIS, BASE_AXIS)
def set_identity(prompt: str, name: str, default_weight: float) -> str:
    """Replace the identity of the first ``<hyperlora:...>`` tag by ``name`` (weights kept),
    or append ``<hyperlora:name:default_weight>`` when the prompt has no tag."""
    name = str(name).strip()
    out, count = replace_tags(prompt, lambda t: build_tag([name, *t.positional[1:]], t.named), first_only=True)
    if count:
        return out
    tag = format_tag(name, default_weight)
    return f"{out.rstrip()} {tag}" if out.strip() else tag


def set_weight(prompt: str, weight: float) -> str:
    """Set the LoRA weight of every ``<hyperlora>`` tag to ``weight``."""
    def change(tag: TagText) -> str:
        named = [n for n in tag.named if n.split("=", 1)[0].strip() not in ("w", "weight")]
        pos = tag.positional
        return build_tag([pos[0] if pos else "", format_number(weight), *pos[2:]], named)

    return replace_tags(prompt, change)[0]


def set_base(prompt: str, base: float, default_weight: float) -> str:
    """Set the Base-LoRA weight of every ``<hyperlora>`` tag to ``base`` (a tag without a
    weight gets ``default_weight``, since the base weight is the third value)."""
    def change(tag: TagText) -> str:
        named = [n for n in tag.named if n.split("=", 1)[0].strip() != "base"]
        pos = tag.positional
        weight = pos[1] if len(pos) > 1 else format_number(default_weight)
        return build_tag([pos[0] if pos else "", weight, format_number(base)], named)

    return replace_tags(prompt, change)[0]


def _prompts(p: Processing, edit: Callable[[str], str]) -> None:
    """Apply ``edit`` to the prompt, and to a separate hires prompt that has a tag."""
    p.prompt = edit(p.prompt)
    hr_prompt = getattr(p, "hr_prompt", "")
    if isinstance(hr_prompt, str) and find_tags(hr_prompt):
        p.hr_prompt = edit(hr_prompt)


def make_axes(axis_option: Callable[..., Any], names: Callable[[], list[str]],
              default_weight: Callable[[], float]) -> list[Any]:
    """The three ``AxisOption`` objects (``axis_option``: the host's class)."""
    def apply_identity(p: Processing, x: str, xs: list[str]) -> None:
        _prompts(p, lambda t: set_identity(t, x, default_weight()))

    def apply_weight(p: Processing, x: float, xs: list[float]) -> None:
        _prompts(p, lambda t: set_weight(t, x))

    def apply_base(p: Processing, x: float, xs: list[float]) -> None:
        _prompts(p, lambda t: set_base(t, x, default_weight()))

    return [axis_option(IDENTITY_AXIS, str, apply_identity, choices=names),
            axis_option(WEIGHT_AXIS, float, apply_weight),
            axis_option(BASE_AXIS, float, apply_base)]


def find_xyz_module(scripts_data: Iterable[Any]) -> Any | None:
    """The loaded ``scripts/xyz_grid.py`` module in ``scripts_data``, or None."""
    for data in scripts_data:
        module = getattr(data, "module", None)
        if getattr(data.script_class, "__module__", "") in ("xyz_grid.py", "xy_grid.py") and module is not None:
            return module
    return None


def register(scripts_data: Iterable[Any], names: Callable[[], list[str]], default_weight: Callable[[], float]
             ) -> bool:
    """Append our axes to xyz_grid's ``axis_options`` (once; earlier copies are replaced, for
    script reloads). Returns False, logging why, when there is no X/Y/Z script."""
    module = find_xyz_module(scripts_data)
    if module is None or not hasattr(module, "axis_options") or not hasattr(module, "AxisOption"):
        log.info("HyperLoRA: no X/Y/Z plot script loaded; its HyperLoRA axes are not added")
        return False
    options = module.axis_options
    options[:] = [o for o in options if getattr(o, "label", None) not in LABELS]
    options.extend(make_axes(module.AxisOption, names, default_weight))
    return True
