"""The host objects the tag code reads, in the WebUI's own shapes: ``ExtraNetworkParams`` and the
parts of ``StableDiffusionProcessing`` that activation and the likeness infotext touch."""

from __future__ import annotations

from dataclasses import dataclass, field


class Params:
    """The WebUI's ExtraNetworkParams shape: ``items`` split into positional and named."""

    def __init__(self, *items: str) -> None:
        self.items = list(items)
        self.positional = [i for i in items if "=" not in i]
        self.named = dict(i.split("=", 1) for i in items if "=" in i)


@dataclass
class Processing:
    """``p``: prompts, extra-network data, infotext params; ``comment`` stores like A1111 (a dict)."""

    prompts: list = field(default_factory=lambda: ["photo"])
    hr_prompts: list = field(default_factory=list)
    extra_network_data: dict = field(default_factory=dict)
    hr_extra_network_data: dict = field(default_factory=dict)
    extra_generation_params: dict = field(default_factory=dict)
    comments: dict = field(default_factory=dict)
    is_hr_pass: bool = False

    def comment(self, text: str) -> None:
        self.comments[text] = 1
