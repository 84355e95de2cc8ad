"""sd-webui-hyperlora core: face photos -> SDXL LoRA with the official HyperLoRA checkpoints.

Host-independent (no WebUI imports). Public API::

    model = hyperlora_ext.load_model("models/hyper_lora/hyper_lora/sdxl_hyper_id_lora_v1_fidelity")
    lora = model.features_to_lora(clip_hidden_states, id_embeddings)   # (N,T,C), (N,512) -> kohya dict
    pred = model.predict(["alice1.jpg", "alice2.jpg"], name="alice")    # -> Prediction
    hyperlora_ext.save_lora(model.expand(pred.identity), "alice.safetensors")
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .download import download_models
from .errors import CheckpointError, DownloadError, HyperLoRAError, ImageError, MissingModelsError, NoFaceError
from .identities.identity import Identity
from .lora import lora_metadata, merge_loras, save_lora
from .model.checkpoint import CheckpointSpec, inspect_checkpoint
from .model.engine import HyperLoRAModel
from .model.locations import DEFAULT_VARIANT, VARIANTS, ModelLocations
from .model.pipeline import Prediction
from .model.precision import resolve_precision
from .photos.images import load_image
from .version import __version__

__all__ = [
    "__version__",
    "CheckpointError", "CheckpointSpec", "DEFAULT_VARIANT", "DownloadError", "HyperLoRAError", "HyperLoRAModel",
    "Identity",
    "ImageError", "MissingModelsError", "ModelLocations", "NoFaceError", "Prediction", "VARIANTS",
    "download_models", "inspect_checkpoint", "load_image", "load_model", "lora_metadata", "merge_loras",
    "save_lora",
]


def load_model(path: str | os.PathLike, device: str | torch.device = "auto", dtype: str | torch.dtype = "auto",
               offload: str = "auto", models_dir: str | os.PathLike | None = None,
               providers: list[str] | None = None, det_size: int = 640) -> HyperLoRAModel:
    """Load a HyperLoRA checkpoint folder (or a variant name under ``models_dir``).

    ``device``/``dtype``: "auto" picks CUDA + fp16 when available, else the CPU, where the bases stay
    16-bit (bf16 on CPUs with native bf16, with bf16 networks; elsewhere the released fp16, widened to
    float32 for the mix, with float32 networks). ``offload`` ("auto", "resident", "offload"): whether
    the weights rest on the CPU between uses ("auto": on CUDA GPUs under 16 GiB). ``models_dir``
    locates CLIP and the insightface pack for ``predict`` (default: derived from the checkpoint's
    place in ``models/hyper_lora/hyper_lora/``). Raises ``CheckpointError`` for a bad folder.
    """
    folder = Path(path)
    locations = ModelLocations.under(models_dir) if models_dir else None
    if not folder.is_dir() and not folder.is_absolute() and len(folder.parts) == 1:
        folder = (locations or ModelLocations.default()).variant_dir(str(path))
    spec = inspect_checkpoint(folder)
    return HyperLoRAModel(spec, resolve_precision(device, dtype), offload=offload, locations=locations,
                          providers=providers, det_size=det_size)
