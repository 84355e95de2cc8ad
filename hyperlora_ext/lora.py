"""kohya-format SDXL LoRA state dicts and saving them (atomically, with Lora-tab metadata)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save as safetensors_bytes

from .files import atomic_write

SDXL_BASE_VERSION = "sdxl_base_v1-0"
TRIGGER_WORDS = ("fcsks", "fxhks", "fhyks")  # HyperLoRA's training captions start with them
TRIGGER_PHRASE = " ".join(TRIGGER_WORDS)
RECOMMENDED_WEIGHT = 0.85  # the official advice: 0.75-0.85


def lora_state_dict(names: list[str], weights: list[tuple[torch.Tensor, torch.Tensor]],
                    alpha: float) -> dict[str, torch.Tensor]:
    """kohya dict: ``{name}.lora_down.weight`` (r, in), ``.lora_up.weight`` (out, r), ``.alpha``
    (0-dim float32 tensor). The LoRA delta of a layer is ``up @ down * alpha / r``."""
    sd: dict[str, torch.Tensor] = {}
    for name, (down, up) in zip(names, weights):
        sd[f"{name}.lora_down.weight"] = down
        sd[f"{name}.lora_up.weight"] = up
        sd[f"{name}.alpha"] = torch.tensor(float(alpha))
    return sd


def layer_names(state_dict: dict[str, torch.Tensor]) -> list[str]:
    return [k[: -len(".lora_down.weight")] for k in state_dict if k.endswith(".lora_down.weight")]


def group_by_layer(state_dict: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """kohya dict -> ``{layer: {"lora_down.weight": ..., "lora_up.weight": ..., "alpha": ...}}`` in
    file order (the per-layer weights a host's LoRA module is built from)."""
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state_dict.items():
        layer, _, part = key.partition(".")
        grouped.setdefault(layer, {})[part] = tensor
    return grouped


def lora_rank(state_dict: dict[str, torch.Tensor]) -> int:
    return next(v.shape[0] for k, v in state_dict.items() if k.endswith(".lora_down.weight"))


def merge_loras(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor],
                second_weight: float) -> dict[str, torch.Tensor]:
    """One LoRA equal to ``first + second_weight * second`` (same layers), by stacking ranks.

    Used to bake an identity's Base-LoRA into its ID-LoRA for a single saved file.
    """
    out: dict[str, torch.Tensor] = {}
    for name in layer_names(first):
        d1, u1, a1 = (first[f"{name}.{s}"] for s in ("lora_down.weight", "lora_up.weight", "alpha"))
        d2, u2, a2 = (second[f"{name}.{s}"] for s in ("lora_down.weight", "lora_up.weight", "alpha"))
        s1, s2 = float(a1) / d1.shape[0], float(a2) / d2.shape[0]
        rank = d1.shape[0] + d2.shape[0]
        out[f"{name}.lora_down.weight"] = torch.cat([d1, d2 * (second_weight * s2 / s1)]).to(d1.dtype)
        out[f"{name}.lora_up.weight"] = torch.cat([u1, u2.to(u1.dtype)], dim=1)
        out[f"{name}.alpha"] = torch.tensor(s1 * rank)
    return out


def lora_metadata(name: str, state_dict: dict[str, torch.Tensor], extra: dict[str, str] | None = None
                  ) -> dict[str, str]:
    """Metadata the WebUI Lora tab and kohya tools read, plus ``hyperlora.*`` provenance keys."""
    alphas = [float(v) for k, v in state_dict.items() if k.endswith(".alpha")]
    meta = {
        "ss_base_model_version": SDXL_BASE_VERSION,
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(lora_rank(state_dict)),
        "ss_network_alpha": str(alphas[0] if alphas else 1.0),
        "ss_output_name": name,
        "ss_sd_model_name": "sd_xl_base_1.0",
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
        "modelspec.title": name,
        "modelspec.date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "modelspec.description": f"Identity LoRA predicted by HyperLoRA (trigger words: {TRIGGER_PHRASE})",
        "ss_tag_frequency": json.dumps({"hyperlora": {TRIGGER_PHRASE: 1}}),
    }
    meta.update({f"hyperlora.{k}": str(v) for k, v in (extra or {}).items()})
    return meta


def file_tensors(state_dict: dict[str, torch.Tensor], dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    """The tensors exactly as a LoRA file stores them: CPU, contiguous, weights in ``dtype``,
    alphas float32. In-memory networks use this too, so a tag and its saved file match bit for bit."""
    return {k: (v.float() if k.endswith(".alpha") else v.to(dtype)).detach().cpu().contiguous().clone()
            for k, v in state_dict.items()}


def save_lora(state_dict: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None,
              preview: Image.Image | None = None, overwrite: bool = False,
              dtype: torch.dtype = torch.float16) -> Path:
    """Write a LoRA safetensors file atomically (weights in ``dtype``, alphas float32).

    ``preview`` is written beside it as ``NAME.preview.png`` (the WebUI's convention).
    Raises ``FileExistsError`` without touching anything if the file exists and
    ``overwrite`` is False.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: a LoRA file must end in .safetensors")
    tensors = file_tensors(state_dict, dtype)
    data = safetensors_bytes(tensors, metadata=metadata or lora_metadata(path.stem, state_dict))
    atomic_write(path, data, overwrite=overwrite)
    if preview is not None:
        buf = io.BytesIO()
        preview.save(buf, format="PNG")
        atomic_write(path.with_name(path.stem + ".preview.png"), buf.getvalue())
    return path
