"""``Processing``: the host's processing object ``p``, as this package uses it (the one place that says so).

Every host passes its ``StableDiffusionProcessing`` (txt2img or img2img) as ``p`` to extra networks
(``activate(p, params_list)``, once per pass: first pass, hires pass, each ADetailer pass), to scripts
(``process``, ``postprocess_image_after_composite``, ``postprocess``) and to X/Y/Z plot axes
(``apply(p, x, xs)``). ``Processing`` lists exactly the attributes our code reads or writes; every
function that takes ``p`` is annotated with it. Structural: the hosts' classes, and the plain objects
of the tests, match it without knowing it.

A pass may lack some of them (another extension's ``p``, a host version): the code reads
``hr_prompt``, ``prompts``, ``hr_prompts``, ``all_prompts``, ``all_hr_prompts``,
``extra_network_data``, ``hr_extra_network_data``, ``is_hr_pass``, ``extra_generation_params`` and
``comment`` with ``getattr`` and a default, and only ``prompt`` directly (the X/Y/Z axes). Besides
these, the generation hooks keep their own state on ``p`` under names of their own, with
``setattr``: ``hyperlora_applied`` (``likeness_infotext``) and ``hyperlora_inner_applied``
(``inner_passes``).
"""

from __future__ import annotations

from typing import Any, Protocol


class ExtraNetworkParams(Protocol):
    """One ``<hyperlora:...>`` tag as the host parsed it (``modules.extra_networks.ExtraNetworkParams``):
    the ``:``-separated items, ``key=value`` ones in ``named``."""

    positional: list[str]
    named: dict[str, str]


class Processing(Protocol):
    """The host's ``p`` (``modules.processing.StableDiffusionProcessing``), as read and written here."""

    prompt: str  # the X/Y/Z axes rewrite the prompt before the generation starts
    hr_prompt: str
    prompts: list[str]  # this batch's prompts, about to be encoded (trigger words)
    hr_prompts: list[str]
    all_prompts: list[str]  # every prompt of the generation (the accordion's tag, from the Script's process)
    all_hr_prompts: list[str]
    extra_network_data: dict[str, list[ExtraNetworkParams]]  # this batch's tags, per extra network
    hr_extra_network_data: dict[str, list[ExtraNetworkParams]]
    is_hr_pass: bool
    extra_generation_params: dict[str, Any]  # the infotext's entries

    def comment(self, text: str) -> None:
        """Add ``text`` to the generation's comments (shown under the image)."""
