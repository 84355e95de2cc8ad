"""``ServiceConfig``: the settings the service reads on every call (the host fills them from its
own options through ``app.panel.settings.service_config``), so a change in the WebUI settings applies at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

Progress = Callable[[float, str], None]  # (fraction 0..1, what is happening)


def no_progress(fraction: float, desc: str) -> None:
    """A ``Progress`` that shows nothing."""


@dataclass(frozen=True)
class ServiceConfig:
    """Settings the service reads (the host fills them from its own options)."""

    models_dir: Path
    identities_dir: Path | None = None  # default: <models_dir>/hyper_lora/identities
    device: str = "auto"
    dtype: str = "auto"
    offload: str = "auto"  # auto | resident | offload
    det_size: int = 640
    providers: tuple[str, ...] | None = None
    allow_download: bool = True
    default_weight: float = 0.85
    auto_trigger_words: bool = True
    likeness_infotext: bool = True
    publish_loras: bool = False  # keep every identity also as a LoRA file (publishing.py)

    @property
    def identity_folder(self) -> Path:
        return self.identities_dir or Path(self.models_dir) / "hyper_lora" / "identities"
