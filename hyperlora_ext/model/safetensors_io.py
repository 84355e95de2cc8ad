"""Reading safetensors files safely: shapes from the header, small files whole, big files
tensor by tensor, and one clear ``CheckpointError`` naming the file and the problem.

Only safetensors are ever read (a pickle file beside a missing one is named, never loaded).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterator

import torch
from safetensors import safe_open

from ..errors import CheckpointError

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def file_error(folder: Path, file: str, problem: str, fix: str = "") -> CheckpointError:
    fix = fix or "Re-download this file from the official HyperLoRA release."
    return CheckpointError(f"HyperLoRA checkpoint {folder}: {file}: {problem}. {fix}")


def require_file(folder: Path, name: str) -> Path:
    path = folder / name
    if path.is_file():
        return path
    stem = name.rsplit(".", 1)[0]
    pickled = [p.name for p in folder.glob(stem + ".*") if p.suffix in _PICKLE_SUFFIXES]
    if pickled:
        raise file_error(folder, name, f"missing; found {', '.join(pickled)} instead",
                         "Only .safetensors weights are loaded (pickle files can run code); "
                         "download the .safetensors release.")
    raise file_error(folder, name, "file is missing")


def read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor shapes from a safetensors header, without reading the data."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as exc:  # safetensors raises several types for corrupt headers
        raise file_error(path.parent, path.name, f"not a readable safetensors file ({exc})") from exc


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a (small) safetensors file, on the CPU."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise file_error(path.parent, path.name, f"cannot be read ({exc})") from exc


_SAFETENSORS_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}


def stream_tensors(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """(key, CPU tensor) for every tensor of a safetensors file, in file order, read with plain
    reads into one reused buffer: no memory map and no copy of the whole file, so the RAM this
    costs is the largest tensor whatever the file size. Each yielded tensor is only valid until
    the next one is yielded (copy it). A truncated or inconsistent file raises ``CheckpointError``."""
    folder, name = path.parent, path.name
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            header_len = int.from_bytes(f.read(8), "little")
            if not 0 < header_len <= min(size - 8, 100 << 20):
                raise ValueError(f"header length {header_len} does not fit the file's {size} bytes")
            header = json.loads(f.read(header_len))
            header.pop("__metadata__", None)
            entries = sorted(((k, v["dtype"], tuple(v["shape"]), *v["data_offsets"]) for k, v in header.items()),
                             key=lambda e: e[3])
        except (ValueError, KeyError, TypeError) as exc:
            raise file_error(folder, name, f"not a readable safetensors file ({exc})") from exc
        data_start = 8 + header_len
        buffer = torch.empty(0, dtype=torch.uint8)
        for key, dtype_name, shape, begin, end in entries:
            dtype = _SAFETENSORS_DTYPES.get(dtype_name)
            nbytes = end - begin
            if dtype is None:
                raise file_error(folder, name, f"{key} has dtype {dtype_name}; HyperLoRA weights are F16, BF16 or F32")
            if nbytes != math.prod(shape) * dtype.itemsize or data_start + end > size:
                raise file_error(folder, name, f"{key} ends past the end of the file or has a wrong size "
                                               "(truncated or damaged download)")
            if buffer.numel() < nbytes:
                buffer = torch.empty(nbytes, dtype=torch.uint8)
            view = buffer[:nbytes]
            f.seek(data_start + begin)
            if f.readinto(view.numpy().data) != nbytes:
                raise file_error(folder, name, f"{key} could not be read completely (truncated download)")
            yield key, view.view(dtype).view(shape)


def check_shapes(folder: Path, file: str, expected: dict[str, tuple[int, ...]],
                 actual: dict[str, tuple[int, ...]], hint: str = "") -> None:
    """Raise one clear error listing missing, unexpected and mis-shaped keys."""
    problems = []
    missing = [k for k in expected if k not in actual]
    unexpected = [k for k in actual if k not in expected]
    wrong = [f"{k} is {list(actual[k])}, expected {list(v)}" for k, v in expected.items()
             if k in actual and tuple(actual[k]) != tuple(v)]
    if missing:
        problems.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:3])}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:3])}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es): {'; '.join(wrong[:3])}")
    if problems:
        raise file_error(folder, file, "; ".join(problems) + (f" ({hint})" if hint else ""))
