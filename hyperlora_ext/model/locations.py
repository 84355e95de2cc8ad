"""Where model files live: one ``models`` root and the official layout under it.

Default layout (the official README's, under the WebUI ``models`` folder)::

    models/hyper_lora/hyper_lora/sdxl_hyper_id_lora_v1_fidelity/   (and ..._edit)
    models/hyper_lora/clip_vit/clip_vit_large_14/                  config.json, model.safetensors
    models/hyper_lora/clip_processor/clip_vit_large_14_processor/  preprocessor_config.json
    models/insightface/models/antelopev2/                          *.onnx

Also which hub repository each file comes from, for the explicit download (``hyperlora_ext.download``)
and for the messages that list what to place by hand, and which of them are pinned (``PINS``: a
commit, and per file its size and sha256, checked before and after the download). Reads the disk
only (file headers at most).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ..errors import MissingModelsError
from ..integrity import verify_file
from ..photos.faces import ANTELOPEV2_FILES
from .checkpoint import ID_PROJECTOR_FILE, MODULES_FILE, MODULES_JSON, RESAMPLER_FILE, is_checkpoint_folder

VARIANTS = ("sdxl_hyper_id_lora_v1_fidelity", "sdxl_hyper_id_lora_v1_edit")
DEFAULT_VARIANT = VARIANTS[0]
HYPERLORA_REPO = "bytedance-research/HyperLoRA"
CLIP_REPO = "openai/clip-vit-large-patch14"
ANTELOPEV2_REPO = "DIAMONIK7777/antelopev2"
CHECKPOINT_FILES = (MODULES_JSON, MODULES_FILE, RESAMPLER_FILE, ID_PROJECTOR_FILE)


@dataclass(frozen=True)
class FilePin:
    """A file's content, fixed: its size in bytes and its sha256 (64 hex digits)."""

    size: int
    sha256: str


@dataclass(frozen=True)
class RepoPin:
    """A hub repository fixed at one commit (40 hex digits), with the files whose content is fixed."""

    revision: str
    files: Mapping[str, FilePin]


# The antelopev2 mirror (a user's copy of insightface's antelopev2.zip, not the insightface authors')
# at one commit, and the released pack's files: the same values are pinned by other projects that use
# this mirror or the official zip. Repositories not listed here (the HyperLoRA and CLIP releases) are
# read at their main branch and checked against the hub's own size and sha256.
ANTELOPEV2_REVISION = "ba0c3e10f4548361eb9a63265d87ce1140ab5a05"
PINS: dict[str, RepoPin] = {ANTELOPEV2_REPO: RepoPin(ANTELOPEV2_REVISION, {
    "scrfd_10g_bnkps.onnx": FilePin(16_923_827, "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91"),
    "2d106det.onnx": FilePin(5_030_888, "f001b856447c413801ef5c42091ed0cd516fcd21f2d6b79635b1e733a7109dbf"),
    "glintr100.onnx": FilePin(260_665_334, "4ab1d6435d639628a6f3e5008dd4f929edf4c4124b1a7169e1048f9fef534cdf"),
    "1k3d68.onnx": FilePin(143_607_619, "df5c06b8a0c12e422b2ed8947b8869faa4105387f199c477af038aa01f9a45cc"),
    "genderage.onnx": FilePin(1_322_532, "4fde69b1c810857b88c64a335084f1c3fe8f01246c9a191b48c7bb756d6652fb"),
})}
ENV_MODELS_DIR = "HYPERLORA_MODELS_DIR"


@dataclass(frozen=True)
class ModelLocations:
    """Every folder HyperLoRA reads, derived from one ``models`` root unless overridden."""

    root: Path
    hyper_lora: Path
    clip_vit: Path
    clip_processor: Path
    antelopev2: Path

    @classmethod
    def under(cls, models_dir: str | os.PathLike) -> ModelLocations:
        root = Path(models_dir).expanduser()
        return cls(root=root, hyper_lora=root / "hyper_lora" / "hyper_lora",
                   clip_vit=root / "hyper_lora" / "clip_vit" / "clip_vit_large_14",
                   clip_processor=root / "hyper_lora" / "clip_processor" / "clip_vit_large_14_processor",
                   antelopev2=root / "insightface" / "models" / "antelopev2")

    @classmethod
    def for_checkpoint(cls, folder: str | os.PathLike) -> ModelLocations:
        """The locations around a checkpoint in ``<models>/hyper_lora/hyper_lora/<variant>``."""
        parents = Path(folder).resolve().parents
        return cls.under(parents[2] if len(parents) > 2 else parents[0])

    @classmethod
    def default(cls) -> ModelLocations:
        """``$HYPERLORA_MODELS_DIR``, else ``./models`` (the WebUI's folder when run inside it)."""
        return cls.under(os.environ.get(ENV_MODELS_DIR) or Path.cwd() / "models")

    def variants(self) -> list[str]:
        """Checkpoint folders present on disk (any folder holding hyper_lora_modules.json)."""
        if not self.hyper_lora.is_dir():
            return []
        return sorted(p.name for p in self.hyper_lora.iterdir() if is_checkpoint_folder(p))

    def variant_dir(self, variant: str) -> Path:
        path = (self.hyper_lora / variant).resolve()
        if path.parent != self.hyper_lora.resolve():
            raise ValueError(f"{variant!r} is not a folder name")
        return path

    def required_files(self, variant: str) -> list[tuple[str, Path, str]]:
        """(file name, local folder, hub repo) for everything ``predict`` needs."""
        files = [(f, self.variant_dir(variant), HYPERLORA_REPO) for f in CHECKPOINT_FILES]
        files += [(f, self.clip_vit, CLIP_REPO) for f in ("config.json", "model.safetensors")]
        files += [("preprocessor_config.json", self.clip_processor, CLIP_REPO)]
        files += [(f, self.antelopev2, ANTELOPEV2_REPO) for f in ANTELOPEV2_FILES]
        return files

    def missing_files(self, variant: str) -> list[tuple[str, Path, str]]:
        return [(f, d, r) for f, d, r in self.required_files(variant) if not (d / f).is_file()]

    def damaged_files(self, variant: str) -> list[tuple[str, Path, str, str]]:
        """(file, folder, repo, problem) for present files that are truncated or damaged (reads
        headers only: safetensors sizes, json syntax, empty files)."""
        out = []
        for f, d, r in self.required_files(variant):
            problem = verify_file(d / f) if (d / f).is_file() else None
            if problem:
                out.append((f, d, r, problem))
        return out

    def listing(self, variant: str) -> str:
        """What is still missing or damaged and where it goes, one line each ('' when complete)."""
        lines = [f"  - {f} (from {r}) -> {d}" for f, d, r in self.missing_files(variant)]
        lines += [f"  - {f} (from {r}) -> {d}: {p}" for f, d, r, p in self.damaged_files(variant)]
        return "\n".join(lines)

    def check(self, variant: str) -> None:
        """Raise ``MissingModelsError`` listing each missing or damaged file and where it goes."""
        missing = self.missing_files(variant)
        damaged = self.damaged_files(variant)
        if missing or damaged:
            what = "missing" if not damaged else "damaged" if not missing else "missing or damaged"
            raise MissingModelsError(
                f"HyperLoRA model files are {what}:\n{self.listing(variant)}\nDownload them to those folders "
                "(replacing damaged ones), or allow the first-use download (needs internet access).",
                [(f, str(d)) for f, d, _ in missing] + [(f, str(d)) for f, d, _, _ in damaged])
