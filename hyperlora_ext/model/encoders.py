"""CLIP vision features: ``CLIPVisionModelWithProjection`` + ``CLIPImageProcessor`` from local
folders; the penultimate hidden state (N, 257, 1024 for ViT-L/14) is what HyperLoRA uses."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image

from ..errors import MissingModelsError

if TYPE_CHECKING:  # annotations only: transformers loads when CLIP does
    from transformers.image_processing_utils import BaseImageProcessor


def _processor_class() -> type[BaseImageProcessor]:
    try:  # transformers >= 5 names the PIL implementation explicitly (no torchvision needed)
        from transformers import CLIPImageProcessorPil

        return CLIPImageProcessorPil
    except ImportError:
        from transformers import CLIPImageProcessor

        return CLIPImageProcessor


class ClipEncoder:
    """Penultimate CLIP ViT hidden states for a list of PIL images."""

    def __init__(self, model_dir: str | Path, processor_dir: str | Path | None = None,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> None:
        model_dir = Path(model_dir)
        processor_dir = Path(processor_dir) if processor_dir else model_dir
        for folder, needed in ((model_dir, "config.json"), (processor_dir, "preprocessor_config.json")):
            if not (folder / needed).is_file():
                raise MissingModelsError(f"CLIP file {needed} not found in {folder}. Download "
                                         "openai/clip-vit-large-patch14 there (or use the first-use download).",
                                         [(needed, str(folder))])
        if not any(model_dir.glob("*.safetensors")):
            raise MissingModelsError(f"No .safetensors CLIP weights in {model_dir} (model.safetensors from "
                                     "openai/clip-vit-large-patch14; pickle .bin files are not loaded).",
                                     [("model.safetensors", str(model_dir))])
        from transformers import CLIPVisionModelWithProjection

        self.processor = _processor_class().from_pretrained(str(processor_dir))
        quiet = logging.getLogger("transformers.modeling_utils")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # the full CLIP file also holds text weights we skip
        try:
            self.model = CLIPVisionModelWithProjection.from_pretrained(str(model_dir), use_safetensors=True)
        finally:
            quiet.setLevel(level)
        self.model.to(device, dtype).eval().requires_grad_(False)  # type: ignore[arg-type]  # transformers' typing of to()
        self.hidden_size = int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def pixel_values(self, images: list[Image.Image]) -> torch.Tensor:
        """Processor output (N, 3, S, S) float32 on the CPU."""
        return self.processor(images=images, return_tensors="pt")["pixel_values"]

    @torch.no_grad()
    def __call__(self, images: list[Image.Image]) -> torch.Tensor:
        """(N, T, C) penultimate hidden states in the model's dtype, on its device."""
        pixels = self.pixel_values(images).to(self.device, self.dtype)
        return self.model(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
