"""``LoRACache``: expanded weights equal the saved LoRA file; the Base-LoRA is baked in."""

import pytest
import torch
from people import ALICE
from safetensors import safe_open

from hyperlora_ext.app.core.service import HyperLoRAService, ServiceConfig
from hyperlora_ext.app.core.tags import (
    Applied,
    TagRequest,
)


def test_lora_weights_equal_the_saved_file(service, alice, tmp_path):
    weights = service.loras.lora(alice)
    assert service.loras.lora(alice) is weights  # cached
    other = service.create_identity([ALICE[0]], "alice2", "tiny_id").identity
    assert service.loras.lora(other).key != weights.key  # hosts cache their objects by key: one per identity
    path = service.save_lora("alice", tmp_path / "Lora")
    assert path == (tmp_path / "Lora" / "alice.safetensors").resolve()
    assert (tmp_path / "Lora" / "alice.preview.png").is_file()
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        assert set(f.keys()) == set(weights.tensors)
        for k in f.keys():
            assert torch.equal(f.get_tensor(k), weights.tensors[k]), k  # bit-identical to the in-memory net
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0"
    assert meta["hyperlora.identity_hash"] == alice.hash and meta["hyperlora.identity"] == "alice"
    with pytest.raises(FileExistsError):
        service.save_lora("alice", tmp_path / "Lora")
    assert service.save_lora("alice", tmp_path / "Lora", overwrite=True) == path
    escaped = service.save_lora("alice", tmp_path / "Lora", file_name="../../x")
    assert escaped.parent == (tmp_path / "Lora").resolve()  # sanitised, never outside the folder
    with pytest.raises(ValueError):
        service.save_lora("alice", tmp_path / "Lora", file_name="..")


def test_base_lora_is_baked_in_and_named(models_dir, tmp_path):
    cfg = ServiceConfig(models_dir=models_dir, identities_dir=tmp_path / "ids", device="cpu", dtype="fp32")
    svc = HyperLoRAService(lambda: cfg)
    ident = svc.create_identity(ALICE, "alice", "tiny_base").identity
    assert ident.has_base
    plain, with_base = svc.loras.lora(ident), svc.loras.lora(ident, 0.4)
    assert with_base.key != plain.key and svc.loras.lora(ident, 0.4).key == with_base.key  # one key per base weight
    down = next(k for k in plain.tensors if k.endswith("lora_down.weight"))
    assert with_base.tensors[down].shape[0] > plain.tensors[down].shape[0]  # ranks stacked
    res = svc.resolve([TagRequest("alice", 0.8, 0.4)])
    assert res.applied == [Applied("alice", ident.hash, 0.8, 0.4, "tiny_base")]


def test_lora_file_names_follow_the_case_rule(service, alice, tmp_path):
    lora_dir = tmp_path / "Lora"
    first = service.save_lora("alice", lora_dir, file_name="Alice")
    assert first.name == "Alice.safetensors"
    with pytest.raises(FileExistsError, match=r"Alice\.safetensors already exists \(the name 'ALICE' differs from it "
                                              r"only in case\); choose another name or allow overwriting"):
        service.save_lora("alice", lora_dir, file_name="ALICE")
    assert service.save_lora("alice", lora_dir, file_name="alice", overwrite=True) == first  # replaced, same spelling
    assert sorted(p.name for p in lora_dir.iterdir()) == ["Alice.json", "Alice.preview.png", "Alice.safetensors"]
