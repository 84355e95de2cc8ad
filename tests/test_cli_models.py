"""CLI, model locations, dtype policy, file names (the first-use download: test_download.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from face_pack import face_image
from safetensors import safe_open

from hyperlora_ext import MissingModelsError, ModelLocations
from hyperlora_ext.files import atomic_write, path_in, safe_name
from hyperlora_ext.model.precision import resolve_precision

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "hyperlora_ext", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_cli_help():
    out = run_cli("--help")
    assert out.returncode == 0 and "predict" in out.stdout and "download" in out.stdout
    out = run_cli("predict", "--help")
    assert "--variant" in out.stdout and "--models-dir" in out.stdout and "--device" in out.stdout


def test_cli_predict(locations, tmp_path):
    face = tmp_path / "alice.png"
    face_image().save(face)
    wall = tmp_path / "wall.png"
    face_image(faces=[]).save(wall)
    out_file = tmp_path / "alice.safetensors"
    out = run_cli("predict", str(face), str(wall), "-o", str(out_file), "--variant", "tiny_id",
                  "--models-dir", str(locations.root), "--device", "cpu", "--dtype", "fp32",
                  "--save-identity", str(tmp_path / "alice.hyperlora.safetensors"))
    assert out.returncode == 0, out.stderr
    assert "skipped wall.png: no face found" in out.stderr and "wrote" in out.stdout
    with safe_open(str(out_file), framework="pt") as f:
        assert f.metadata()["hyperlora.variant"] == "tiny_id" and len(list(f.keys())) == 48
    assert (tmp_path / "alice.preview.png").is_file() and (tmp_path / "alice.hyperlora.safetensors").is_file()
    again = run_cli("predict", str(face), "-o", str(out_file), "--variant", "tiny_id",
                    "--models-dir", str(locations.root), "--device", "cpu")
    assert again.returncode == 2 and "already exists" in again.stderr


def test_cli_reports_missing_models(tmp_path):
    out = run_cli("predict", "x.png", "-o", str(tmp_path / "o.safetensors"), "--models-dir", str(tmp_path))
    assert out.returncode == 2
    assert "model files are missing" in out.stderr and "resampler.safetensors" in out.stderr
    assert "scrfd_10g_bnkps.onnx" in out.stderr and str(tmp_path / "insightface") in out.stderr


def test_locations_and_missing_files(tmp_path, locations):
    assert locations.variants() == ["tiny_base", "tiny_id"]
    empty = ModelLocations.under(tmp_path)
    with pytest.raises(MissingModelsError) as err:
        empty.check("sdxl_hyper_id_lora_v1_fidelity")
    assert len(err.value.missing) == 4 + 3 + 3
    with pytest.raises(ValueError):
        empty.variant_dir("../../etc")


def test_precision_policy():
    p = resolve_precision("cpu", "auto")
    assert p.basis in (torch.float16, torch.bfloat16) and p.compute in (torch.float32, torch.bfloat16)  # 16-bit bases
    assert resolve_precision("cpu", "fp16") == resolve_precision("cpu", "fp32").__class__(
        torch.device("cpu"), torch.float32, torch.float16)  # fp16 networks are slow on CPUs
    assert resolve_precision("cpu", "fp32").basis == torch.float32
    assert resolve_precision("cpu", "bf16").basis == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_precision("cpu", "int8")


def test_safe_names_and_atomic_write(tmp_path):
    assert safe_name("  Alice Smith!  ") == "Alice Smith"
    assert safe_name("../../etc/passwd") == "etc_passwd"
    for bad in ("", "...", "CON", "///"):
        with pytest.raises(ValueError):
            safe_name(bad)
    assert path_in(tmp_path, "../x", ".safetensors").parent == tmp_path.resolve()
    target = tmp_path / "f.bin"
    atomic_write(target, b"one")
    with pytest.raises(FileExistsError):
        atomic_write(target, b"two", overwrite=False)
    assert target.read_bytes() == b"one" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
