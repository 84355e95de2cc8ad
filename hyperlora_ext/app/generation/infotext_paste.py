"""Pasting an image's infotext (PNG Info -> Send to txt2img, or the prompt box's paste button).

An identity may have been renamed since the image was made: its tag is pointed at the stored
identity with the hash the infotext recorded. Gone identities are logged (the tag stays, and the
generation will say the name is unknown).
"""

from __future__ import annotations

import logging
from typing import Any

from ..core.identity_library import IdentityLibrary
from ..core.tags import INFOTEXT_KEY, parse_infotext, rename_in_prompt

log = logging.getLogger(__name__)


def point_tags_at_renamed(params: dict[str, Any], library: IdentityLibrary) -> None:
    """Rewrite ``params["Prompt"]`` (the host's parsed infotext) in place: each recorded identity
    that is no longer stored under its name but is under another (same hash) gets that name."""
    for applied in parse_infotext(params.get(INFOTEXT_KEY, "")):
        if applied.name in library.store:
            continue
        found = library.find_by_hash(applied.identity_hash)
        prompt = params.get("Prompt", "")
        if found is not None and isinstance(prompt, str):
            params["Prompt"] = rename_in_prompt(prompt, applied.name, found)
        else:
            log.warning("HyperLoRA: the pasted image used identity %s (hash %s), which is not stored here",
                        applied.name, applied.identity_hash)
