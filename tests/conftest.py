"""Shared fixtures: a models folder with tiny real models in the official layouts.

The end-to-end suite (``tests/e2e``, real WebUIs) is not even collected unless ``--e2e`` is given:
``pytest --e2e tests/e2e -k forge`` (see tests/e2e/README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from builders import CLIP_DIM, make_checkpoint, make_clip  # noqa: E402
from face_pack import build_face_pack  # noqa: E402

from hyperlora_ext.model.locations import ModelLocations  # noqa: E402

E2E = Path(__file__).parent / "e2e"


def pytest_addoption(parser) -> None:
    parser.addoption("--e2e", action="store_true",
                     help="collect the end-to-end suite (tests/e2e: real WebUIs; see tests/e2e/README.md)")


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """Leave tests/e2e out of every run without --e2e (None: let pytest decide as usual)."""
    if not config.getoption("--e2e") and (collection_path == E2E or E2E in collection_path.parents):
        return True
    return None


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
