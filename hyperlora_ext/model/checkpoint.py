"""Official HyperLoRA checkpoint folders: discover, validate and read them.

A folder (e.g. ``sdxl_hyper_id_lora_v1_fidelity``) holds ``hyper_lora_modules.json``,
``hyper_lora_modules.safetensors``, ``resampler.safetensors``, ``id_projector.safetensors``
and optionally ``base_resampler.safetensors`` (+ ``base_*_basis`` tensors). Every size is
inferred from tensor shapes; only the attention head width (64) may come from an optional
``config.json`` (``{"dim_head": 64}`` or ``{"resampler": {"dim_head": 64}}``).
Only safetensors are ever read.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError
from .hypernet import LayerShape, ResamplerSpec
from .safetensors_io import check_shapes, file_error, read_shapes, require_file
from .sdxl_names import LORA_PROJECTIONS, to_compvis

MODULES_JSON = "hyper_lora_modules.json"
MODULES_FILE = "hyper_lora_modules.safetensors"
RESAMPLER_FILE = "resampler.safetensors"
BASE_RESAMPLER_FILE = "base_resampler.safetensors"
ID_PROJECTOR_FILE = "id_projector.safetensors"
CONFIG_FILE = "config.json"
TOKENS_PER_MODULE = 8  # (q, k, v, out) x (down, up)
_BASIS_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out")


@dataclass(frozen=True)
class ModuleInfo:
    """One attention module: its json name, kohya compvis prefix and feature sizes."""

    source_name: str
    lora_prefix: str
    hidden_size: int
    cross_attention_dim: int | None


@dataclass(frozen=True)
class IDProjectorSpec:
    embed_dim: int  # ArcFace embedding width (512)
    num_tokens: int  # ID tokens (16)
    token_dim: int  # width of one ID token (1024)


@dataclass(frozen=True)
class CheckpointSpec:
    """Everything known about a checkpoint folder without loading its weights."""

    folder: Path
    modules: tuple[ModuleInfo, ...]
    hyper_dim: int  # K, coefficients per token
    rank: int  # ID-LoRA rank r
    base_rank: int | None  # Base-LoRA rank (r / 2) or None without Base-LoRA
    resampler: ResamplerSpec
    base_resampler: ResamplerSpec | None
    id_projector: IDProjectorSpec | None
    fingerprint: str  # identifies the weights (cheap content sample, not a full hash)

    @property
    def variant(self) -> str:
        return self.folder.name

    @property
    def has_base(self) -> bool:
        return self.base_resampler is not None

    @property
    def uses_clip(self) -> bool:
        """True when CLIP features are a condition of the ID resampler."""
        return self.id_projector is None or self.resampler.embedding_dim_2 is not None

    @property
    def layers(self) -> list[LayerShape]:
        """Target layers in token order: module by module, q, k, v, out."""
        shapes = []
        for m in self.modules:
            ctx = m.cross_attention_dim or m.hidden_size
            for in_f in (m.hidden_size, ctx, ctx, m.hidden_size):
                shapes.append(LayerShape(in_f, m.hidden_size))
        return shapes

    @property
    def lora_names(self) -> list[str]:
        """kohya layer names in token order, e.g. ``lora_unet_..._attn1_to_q``."""
        return [f"{m.lora_prefix}_{p}" for m in self.modules for p in LORA_PROJECTIONS]


def is_checkpoint_folder(folder: Path) -> bool:
    return (folder / MODULES_JSON).is_file()


def _read_modules_json(folder: Path) -> tuple[ModuleInfo, ...]:
    path = require_file(folder, MODULES_JSON)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise file_error(folder, MODULES_JSON, f"not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not data:
        raise file_error(folder, MODULES_JSON, "expected a non-empty object mapping module names to sizes")
    modules = []
    for name, info in data.items():
        try:
            hidden = int(info["hidden_size"])
            cross = info.get("cross_attention_dim")
            cross = None if cross is None else int(cross)
        except (TypeError, KeyError, ValueError) as exc:
            raise file_error(folder, MODULES_JSON, f"module {name!r} needs integer 'hidden_size' and "
                             f"'cross_attention_dim' (int or null), got {info!r}") from exc
        try:
            prefix = to_compvis(name)
        except ValueError as exc:
            raise file_error(folder, MODULES_JSON, str(exc)) from exc
        modules.append(ModuleInfo(name, prefix, hidden, cross))
    prefixes = [m.lora_prefix for m in modules]
    if len(set(prefixes)) != len(prefixes):
        dup = next(p for p in prefixes if prefixes.count(p) > 1)
        raise file_error(folder, MODULES_JSON, f"module {dup} is listed twice (in two spellings?)")
    return tuple(modules)


def _dim_head(folder: Path) -> int:
    path = folder / CONFIG_FILE
    if not path.is_file():
        return 64
    try:
        cfg = json.loads(path.read_text(encoding="utf-8-sig"))
        value = cfg.get("resampler", {}).get("dim_head", cfg.get("dim_head", 64))
        return int(value)
    except (ValueError, AttributeError, TypeError) as exc:
        raise file_error(folder, CONFIG_FILE, f"cannot read 'dim_head' ({exc})",
                         "Fix or delete config.json (the default head width is 64).") from exc


def _resampler_spec(folder: Path, file: str, shapes: dict[str, tuple[int, ...]],
                    dim_head: int) -> ResamplerSpec:
    def get(key: str, rank: int) -> tuple[int, ...]:
        if key not in shapes or len(shapes[key]) != rank:
            raise file_error(folder, file, f"key {key!r} is missing or has the wrong rank")
        return shapes[key]

    _, queries, dim = get("latents", 3)
    out_dim = get("proj_out.weight", 2)[0]
    depth = len({int(m.group(1)) for k in shapes if (m := re.match(r"layers\.(\d+)\.", k))})
    if depth == 0:
        raise file_error(folder, file, "no 'layers.N.*' keys")
    inner = get("layers.0.attn1.to_q.weight", 2)[0]
    if inner % dim_head:
        raise file_error(folder, file, f"attention width {inner} is not a multiple of the head width {dim_head}",
                         "Set the right 'dim_head' in config.json.")
    spec = ResamplerSpec(
        dim=dim, depth=depth, heads=inner // dim_head, dim_head=dim_head,
        ff_mult=get("layers.0.ff.net.0.proj.weight", 2)[0] // dim, num_queries=queries,
        embedding_dim=get("proj_in.weight", 2)[1],
        embedding_dim_2=shapes["proj_in_2.weight"][1] if "proj_in_2.weight" in shapes else None,
        output_dim=out_dim,
    )
    from .hypernet import Resampler  # local: building on "meta" costs nothing

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in Resampler(spec).state_dict().items()}
    check_shapes(folder, file, expected, shapes)
    return spec


def _check_tokens(folder: Path, file: str, spec: ResamplerSpec, n_queries: int, hyper_dim: int) -> None:
    if spec.num_queries != n_queries or spec.output_dim != hyper_dim:
        raise file_error(folder, file, f"latents/proj_out give {spec.num_queries} tokens of width {spec.output_dim}, "
                         f"but the json and basis need {n_queries} tokens of width {hyper_dim}")


def _fingerprint(folder: Path, files: list[str]) -> str:
    """Hash of the json, every file's header and size, and a sample of its data."""
    h = hashlib.blake2b(digest_size=16)
    for name in files:
        path = folder / name
        size = path.stat().st_size
        h.update(f"{name}:{size}".encode())
        with open(path, "rb") as f:
            head = f.read(4 << 20)
            h.update(head)
            if size > 8 << 20:
                f.seek(size - (4 << 20))
                h.update(f.read())
    return h.hexdigest()


def inspect_checkpoint(folder: str | Path) -> CheckpointSpec:
    """Validate a checkpoint folder from its json and safetensors headers (no weights read).

    Raises ``CheckpointError`` naming the file and the problem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"HyperLoRA checkpoint folder {folder} does not exist. "
                              "Put the official folder (e.g. sdxl_hyper_id_lora_v1_fidelity) there.")
    modules = _read_modules_json(folder)
    dim_head = _dim_head(folder)

    # Basis tensors
    basis_shapes = read_shapes(require_file(folder, MODULES_FILE))
    first = basis_shapes.get("0.to_q.id_down_basis")
    if first is None or len(first) != 3:
        raise file_error(folder, MODULES_FILE, "key '0.to_q.id_down_basis' (K, in, rank) is missing")
    hyper_dim, _, rank = first
    has_base_basis = "0.to_q.base_down_basis" in basis_shapes
    base_rank = basis_shapes["0.to_q.base_down_basis"][2] if has_base_basis else None
    expected: dict[str, tuple[int, ...]] = {}
    for i, m in enumerate(modules):
        ctx = m.cross_attention_dim or m.hidden_size
        for proj, in_f in zip(_BASIS_PROJECTIONS, (m.hidden_size, ctx, ctx, m.hidden_size)):
            for kind, r in (("id", rank), ("base", base_rank)):
                if r is None:
                    continue
                expected[f"{i}.{proj}.{kind}_down_basis"] = (hyper_dim, in_f, r)
                expected[f"{i}.{proj}.{kind}_up_basis"] = (hyper_dim, r, m.hidden_size)
    check_shapes(folder, MODULES_FILE, expected, basis_shapes,
                 f"{MODULES_JSON} lists {len(modules)} modules")

    # Resamplers
    files = [MODULES_JSON, MODULES_FILE, RESAMPLER_FILE]
    resampler = _resampler_spec(folder, RESAMPLER_FILE, read_shapes(require_file(folder, RESAMPLER_FILE)), dim_head)
    n_queries = TOKENS_PER_MODULE * len(modules)
    _check_tokens(folder, RESAMPLER_FILE, resampler, n_queries, hyper_dim)
    base_resampler = None
    if (folder / BASE_RESAMPLER_FILE).is_file() or has_base_basis:
        if not has_base_basis:
            raise file_error(folder, MODULES_FILE, f"{BASE_RESAMPLER_FILE} is present but there are no "
                             "'base_*_basis' tensors", f"Remove {BASE_RESAMPLER_FILE} or use the matching weights.")
        base_resampler = _resampler_spec(folder, BASE_RESAMPLER_FILE,
                                         read_shapes(require_file(folder, BASE_RESAMPLER_FILE)), dim_head)
        _check_tokens(folder, BASE_RESAMPLER_FILE, base_resampler, n_queries, hyper_dim)
        if base_resampler.embedding_dim_2 is not None:
            raise file_error(folder, BASE_RESAMPLER_FILE, "a Base resampler takes one condition (no proj_in_2)")
        files.append(BASE_RESAMPLER_FILE)

    # ID projector: needed when the resampler takes ID tokens
    id_projector = None
    proj_path = folder / ID_PROJECTOR_FILE
    if proj_path.is_file() or resampler.embedding_dim_2 is not None:
        shapes = read_shapes(require_file(folder, ID_PROJECTOR_FILE))
        w, ln = shapes.get("0.weight"), shapes.get("2.weight")
        if w is None or ln is None or len(w) != 2 or len(ln) != 1 or w[0] % ln[0]:
            raise file_error(folder, ID_PROJECTOR_FILE, "expected '0.weight' (T*D, E) and '2.weight' (D,)")
        id_projector = IDProjectorSpec(embed_dim=w[1], num_tokens=w[0] // ln[0], token_dim=ln[0])
        check_shapes(folder, ID_PROJECTOR_FILE, {"0.weight": w, "0.bias": (w[0],), "2.weight": ln, "2.bias": ln},
                     shapes)
        if id_projector.token_dim != resampler.embedding_dim:
            raise file_error(folder, ID_PROJECTOR_FILE, f"ID tokens are {id_projector.token_dim} wide but "
                             f"{RESAMPLER_FILE} proj_in takes {resampler.embedding_dim}")
        files.append(ID_PROJECTOR_FILE)

    return CheckpointSpec(
        folder=folder, modules=modules, hyper_dim=hyper_dim, rank=rank, base_rank=base_rank,
        resampler=resampler, base_resampler=base_resampler, id_projector=id_projector,
        fingerprint=_fingerprint(folder, files),
    )
