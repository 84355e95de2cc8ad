"""Passes that other extensions run inside one generation, such as ADetailer's inpainting pass per
detected face, and what they applied.

Such a pass is a whole ``process_images`` on a new ``p``: the host runs our extra network for it (so
its tags apply), but not our script, so nothing of it would reach the infotext of the image it
changes. Our script marks the generation it sees (``begin`` from ``Script.process``, ``end`` from
``Script.postprocess``); an activation for any other ``p`` meanwhile, in the same thread, is an
inner pass, and the identities it applied are kept on the outer ``p`` (``record``) until the image
being finished takes them (``take``, from the likeness annotation). Host-independent.

A generation that raises never reaches ``postprocess``, and no script hook runs after it. So a
generation counts as running only while it is on this thread's call stack (a frame has its ``p``
as a local: the host's ``process_images(p)`` and everything it calls); ``begin`` and ``record``
forget the ones that are not, so nothing stacks on a generation that raised, while a generation
begun inside another (an inner pass that runs our script too) nests.
"""

from __future__ import annotations

import sys
import threading
from types import FrameType
from typing import Any, Sequence

from ...version import __version__
from ..core.tags import INFOTEXT_KEY, Applied, format_infotext
from .processing import Processing

INNER_KEY = INFOTEXT_KEY + " inner passes"  # e.g. ADetailer's face passes, in their order
VERSION_KEY = INFOTEXT_KEY + " version"
_ATTR = "hyperlora_inner_applied"
_state = threading.local()


def _running() -> list[Processing]:
    if not hasattr(_state, "running"):
        _state.running = []
    return _state.running


def _on_stack(p: Processing, frame: FrameType | None) -> bool:
    """Whether ``p`` is a local of ``frame`` or of a frame that called it."""
    while frame is not None:
        if any(value is p for value in frame.f_locals.values()):
            return True
        frame = frame.f_back
    return False


def _current() -> list[Processing]:
    """This thread's running generations, without those no longer on the call stack (a generation
    that raised). Called from ``begin`` / ``record``: the stack is checked from the frame that called them."""
    running = _running()
    caller = sys._getframe(2)
    running[:] = [q for q in running if _on_stack(q, caller)]
    return running


def begin(p: Processing) -> None:
    """``p`` is the generation now running in this thread (its own passes are not inner); a
    generation begun inside it (an inner pass that runs our script too) stacks on top. A
    generation that raised before its ``end`` is forgotten here."""
    setattr(p, _ATTR, [])
    _current().append(p)


def end(p: Processing) -> None:
    """The generation ``p`` is over (also forgets any left open inside it)."""
    running = _running()
    if any(q is p for q in running):
        while running.pop() is not p:
            pass


def record(p: Processing, applied: Sequence[Applied]) -> bool:
    """If ``p`` is an inner pass of the running generation, keep ``applied`` for its image (in pass
    order) and return True."""
    running = _current()
    if not running or running[-1] is p:
        return False
    getattr(running[-1], _ATTR).extend(applied)
    return True


def take(p: Processing) -> list[Applied]:
    """What inner passes applied since the last call, for the image ``p`` is finishing now."""
    applied = list(getattr(p, _ATTR, None) or [])
    if applied:
        setattr(p, _ATTR, [])
    return applied


def write_infotext(params: dict[str, Any], applied: Sequence[Applied]) -> None:
    """Set ``HyperLoRA inner passes`` (one entry per pass, ``; ``-separated, as ``HyperLoRA``) and the
    version for an image whose inner passes applied ``applied``; clear it for one without."""
    params.pop(INNER_KEY, None)
    if applied:
        params[INNER_KEY] = format_infotext(list(applied))
        params[VERSION_KEY] = __version__
