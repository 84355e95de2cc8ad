"""Shared fixtures: a models folder with tiny real models in the official layouts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from builders import make_checkpoint, make_clip  # noqa: E402
from face_pack import build_face_pack  # noqa: E402

from hyperlora_ext.model.locations import ModelLocations  # noqa: E402

CLIP_DIM = 48


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """models/ with a tiny CLIP, the synthetic antelopev2 pack and two checkpoints
    (``tiny_id`` in fp16 like the release; ``tiny_base`` with Base-LoRA, fp32)."""
    root = tmp_path_factory.mktemp("webui") / "models"
    locs = ModelLocations.under(root)
    make_clip(locs.clip_vit, locs.clip_processor, hidden=CLIP_DIM)
    build_face_pack(locs.antelopev2)
    make_checkpoint(locs.hyper_lora / "tiny_id", clip_dim=CLIP_DIM, seed=1)
    make_checkpoint(locs.hyper_lora / "tiny_base", clip_dim=CLIP_DIM, base=True, seed=2,
                    spelling="kohya", dtype=__import__("torch").float32)
    return root


@pytest.fixture(scope="session")
def locations(models_dir) -> ModelLocations:
    return ModelLocations.under(models_dir)


@pytest.fixture(scope="session")
def model(locations):
    import hyperlora_ext

    return hyperlora_ext.load_model(locations.variant_dir("tiny_id"), device="cpu", dtype="fp32",
                                    models_dir=locations.root)


@pytest.fixture(scope="session")
def base_model(locations):
    import hyperlora_ext

    return hyperlora_ext.load_model(locations.variant_dir("tiny_base"), device="cpu", dtype="fp32",
                                    models_dir=locations.root)
