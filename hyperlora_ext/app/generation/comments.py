"""Problems of a generation, told to the user without failing it: a comment under the image and
the ``HyperLoRA warnings`` infotext entry (the API's JSON carries no comments)."""

from __future__ import annotations

import logging

from ..core.tags import INFOTEXT_KEY
from .processing import Processing

log = logging.getLogger(__name__)
WARNINGS_KEY = INFOTEXT_KEY + " warnings"


def comment(p: Processing, text: str) -> None:
    """Show ``text`` in the generation's comments (``p.comment``) and add it to ``p``'s
    ``HyperLoRA warnings`` infotext entry (each message once); also logged."""
    log.warning(text)
    add_comment = getattr(p, "comment", None)
    if callable(add_comment):
        add_comment(text)
    params = getattr(p, "extra_generation_params", None)
    if isinstance(params, dict):
        message = text.removeprefix("HyperLoRA: ")
        previous = params.get(WARNINGS_KEY)
        params[WARNINGS_KEY] = message if not previous or message in previous else f"{previous}; {message}"
