"""Where model files live, the explicit first-use download, and the device / dtype policy.

Default layout (the official README's, under the WebUI ``models`` folder)::

    models/hyper_lora/hyper_lora/sdxl_hyper_id_lora_v1_fidelity/   (and ..._edit)
    models/hyper_lora/clip_vit/clip_vit_large_14/                  config.json, model.safetensors
    models/hyper_lora/clip_processor/clip_vit_large_14_processor/  preprocessor_config.json
    models/insightface/models/antelopev2/                          *.onnx

Nothing here touches the network unless ``download_models`` is called (``download.py``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import ID_PROJECTOR_FILE, MODULES_FILE, MODULES_JSON, RESAMPLER_FILE, is_checkpoint_folder
from .download import Progress, verify_file
from .errors import DownloadError, MissingModelsError
from .faces import ANTELOPEV2_FILES

log = logging.getLogger(__name__)

VARIANTS = ("sdxl_hyper_id_lora_v1_fidelity", "sdxl_hyper_id_lora_v1_edit")
DEFAULT_VARIANT = VARIANTS[0]
HYPERLORA_REPO = "bytedance-research/HyperLoRA"
CLIP_REPO = "openai/clip-vit-large-patch14"
ANTELOPEV2_REPO = "DIAMONIK7777/antelopev2"
CHECKPOINT_FILES = (MODULES_JSON, MODULES_FILE, RESAMPLER_FILE, ID_PROJECTOR_FILE)
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


def download_models(locations: ModelLocations, variant: str = DEFAULT_VARIANT, progress: bool = True,
                    on_progress: Progress | None = None, endpoint: str | None = None) -> list[Path]:
    """Download the missing (or damaged) files of ``variant`` from the Hugging Face hub; returns
    the new paths.

    Explicit only (never at import or install). ``progress=False`` hides the console bars;
    ``on_progress(fraction, text)`` is called for every received chunk. ``endpoint``: the hub
    address (default ``$HF_ENDPOINT``, else huggingface.co). Raises ``DownloadError`` (a
    ``MissingModelsError`` listing what is still missing) when offline, when a folder cannot be
    written, or when a downloaded file is damaged (it is deleted, never loaded).
    """
    from .download import RemoteFile, fetch

    damaged = {d / f for f, d, _, _ in locations.damaged_files(variant)}
    todo = []
    for name, folder, repo in locations.missing_files(variant) + [
            (f, d, r) for f, d, r, _ in locations.damaged_files(variant)]:
        if repo == HYPERLORA_REPO:  # the hub repo holds one folder per variant
            todo.append(RemoteFile(repo, f"{variant}/{name}", folder.parent))
        else:
            todo.append(RemoteFile(repo, name, folder))
    try:
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    except ImportError:  # very old huggingface_hub
        disable_progress_bars = enable_progress_bars = lambda: None  # noqa: E731
    if not progress:
        disable_progress_bars()
    try:
        done = fetch(todo, endpoint, on_progress, frozenset(damaged))
    except DownloadError as exc:
        missing = locations.missing_files(variant)
        raise DownloadError(f"HyperLoRA download failed: {exc}\n{locations.listing(variant)}",
                            [(f, str(d)) for f, d, _ in missing]) from exc
    finally:
        if not progress:
            enable_progress_bars()
    for path in done:
        log.info("HyperLoRA: downloaded %s", path)
    return done


@dataclass(frozen=True)
class Precision:
    """``compute``: dtype of CLIP, projector and resampler; ``basis``: dtype of the LoRA bases."""

    device: torch.device
    compute: torch.dtype
    basis: torch.dtype


_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
           "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def cpu_has_fast_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(device: str | torch.device = "auto", dtype: str | torch.dtype = "auto") -> Precision:
    """Pick device and dtypes. ``auto``: CUDA if available, fp16 there. On the CPU the LoRA bases
    stay in 16 bit (half the RAM of float32): bf16 on CPUs with native bf16 units (AVX512-BF16 /
    AMX), mixed by kernels that accumulate in float32, LoRA within ~0.3% of float32; elsewhere the
    released float16 values, widened to float32 for the mix (exact). The networks run in bf16 where
    the CPU has bf16 units, else float32. ``fp32`` keeps everything in float32."""
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       "cpu" if device == "auto" else device)
    if isinstance(dtype, str) and dtype != "auto":
        if dtype not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; use auto, fp32, fp16 or bf16")
        dtype = _DTYPES[dtype]
    if dev.type == "cpu":
        if dtype == "auto":
            if cpu_has_fast_bf16():
                return Precision(dev, torch.bfloat16, torch.bfloat16)
            return Precision(dev, torch.float32, torch.float16)
        if dtype == torch.float16:
            log.warning("HyperLoRA: fp16 networks are very slow on the CPU; using float32 (bases stay 16-bit)")
            return Precision(dev, torch.float32, torch.float16)
        return Precision(dev, dtype, dtype)
    if dtype == "auto":
        dtype = torch.float16
    return Precision(dev, dtype, dtype)
