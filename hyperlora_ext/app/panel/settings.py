"""The extension's settings (Settings tab -> HyperLoRA) and how they become a ServiceConfig.

Host-independent: ``OPTIONS`` is plain data; the host turns each entry into its
``shared.OptionInfo`` and passes its ``opts`` / ``cmd_opts`` objects to ``service_config``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...model.locations import ENV_MODELS_DIR
from ..core.config import ServiceConfig

SECTION = ("hyperlora", "HyperLoRA")
PUBLISH_KEY = "hyperlora_publish_loras"
FILE_MB = 23.5  # one identity's LoRA file (fp16, rank 8, 560 layers)
OFFLOAD_CHOICES = {"Auto (offload on GPUs under 16 GB)": "auto", "Keep on GPU": "resident",
                   "Offload to CPU after each use": "offload"}


@dataclass(frozen=True)
class Option:
    """One setting: ``kind`` is textbox, slider, checkbox or radio; ``args`` go to the component;
    ``reload_ui``: read when the page is built, so a change shows after Settings -> Reload UI."""

    key: str
    default: object
    label: str
    kind: str
    args: dict = field(default_factory=dict)
    info: str = ""
    reload_ui: bool = False


OPTIONS = [
    Option("hyperlora_models_dir", "", "Models folder", "textbox",
           info="holds hyper_lora/ and insightface/; empty: --hyperlora-models-dir, else the WebUI models "
                "folder; the identities live in <models>/hyper_lora/identities"),
    Option("hyperlora_default_weight", 0.85, "Default weight of inserted <hyperlora> tags", "slider",
           {"minimum": 0.0, "maximum": 2.0, "step": 0.05}),
    Option("hyperlora_auto_trigger_words", True,
           "Add the trigger words 'fcsks fxhks fhyks' to prompts with a <hyperlora> tag that lack them",
           "checkbox"),
    Option("hyperlora_likeness_infotext", True,
           "Record each image's likeness to the applied identities in its infotext (HyperLoRA likeness)",
           "checkbox", info="one face detection + recognition pass per final image, after ADetailer "
                            "(cost: docs/performance.md)"),
    Option("hyperlora_offload", "Auto (offload on GPUs under 16 GB)", "Hypernetwork on the GPU", "radio",
           {"choices": list(OFFLOAD_CHOICES)}, info="keeping it saves ~1 s per identity; offloading frees ~3 GB"),
    Option("hyperlora_det_size", 640, "Face detector input size (pixels)", "slider",
           {"minimum": 256, "maximum": 1024, "step": 32}, info="larger finds small faces; smaller is faster"),
    Option("hyperlora_providers", "", "ONNX Runtime providers for face analysis", "textbox",
           info="comma-separated, e.g. CUDAExecutionProvider,CPUExecutionProvider; empty: CUDA when "
                "available, else CPU"),
    Option("hyperlora_open_accordion", False, "Open the HyperLoRA panel in txt2img and img2img when the page loads",
           "checkbox", info="off: it starts closed, one line above the Script dropdown", reload_ui=True),
    Option("hyperlora_allow_download", True, "Download missing HyperLoRA model files on first use", "checkbox",
           info="from the Hugging Face hub; off: a message lists the files to place by hand"),
    Option(PUBLISH_KEY, False, "Also keep every identity as a LoRA file (Lora folder, HyperLoRA/hyperlora_NAME)",
           "checkbox", info=f"for tools that read only <lora:...> (Regional Prompter, LoRA Block Weight); "
                            f"~{FILE_MB:g} MB each, kept in step with the identities; turning it off leaves the "
                            "files in place"),
]


def option_value(opts: object | None, key: str) -> Any:
    default = next(o.default for o in OPTIONS if o.key == key)
    return getattr(opts, key, default) if opts is not None else default


def open_accordion(opts: object | None) -> bool:
    """Whether the HyperLoRA accordion starts open (setting ``hyperlora_open_accordion``, default closed)."""
    return bool(option_value(opts, "hyperlora_open_accordion"))


def models_dir(opts: object | None, cmd_opts: object, webui_models_dir: str | os.PathLike) -> Path:
    """Setting, else ``--hyperlora-models-dir``, else ``$HYPERLORA_MODELS_DIR``, else the WebUI's."""
    chosen = (str(option_value(opts, "hyperlora_models_dir") or "").strip()
              or getattr(cmd_opts, "hyperlora_models_dir", None) or os.environ.get(ENV_MODELS_DIR)
              or webui_models_dir)
    return Path(chosen).expanduser()


def service_config(opts: object | None, cmd_opts: object, webui_models_dir: str | os.PathLike, device: str = "auto"
                   ) -> ServiceConfig:
    providers = [p.strip() for p in str(option_value(opts, "hyperlora_providers") or "").split(",") if p.strip()]
    return ServiceConfig(
        models_dir=models_dir(opts, cmd_opts, webui_models_dir),
        device=device,
        offload=OFFLOAD_CHOICES.get(option_value(opts, "hyperlora_offload"), "auto"),
        det_size=int(option_value(opts, "hyperlora_det_size")),
        providers=tuple(providers) or None,
        allow_download=bool(option_value(opts, "hyperlora_allow_download")),
        default_weight=float(option_value(opts, "hyperlora_default_weight")),
        auto_trigger_words=bool(option_value(opts, "hyperlora_auto_trigger_words")),
        likeness_infotext=bool(option_value(opts, "hyperlora_likeness_infotext")),
        publish_loras=bool(option_value(opts, PUBLISH_KEY)),
    )
