"""A tag's LoRA must not depend on the caller's torch context (autocast, inference mode, default
dtype, float32 matmul precision) nor on what ran before: bit-identical weights in any context."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from face_pack import face_image

import hyperlora_ext
from hyperlora_ext.app.core.service import HyperLoRAService, ServiceConfig
from hyperlora_ext.model.numerics import own_numerics

ALICE = [face_image(feature=(170, 110, 90), seed=s) for s in (1, 2)]


@contextmanager
def host_default_dtype(dtype: torch.dtype):
    saved = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


@contextmanager
def host_fast_float32():
    """What a host may set process-wide: float32 matmuls through bf16 (oneDNN) / TF32 (CUDA)."""
    mkldnn = torch.backends.mkldnn.matmul
    saved = mkldnn.fp32_precision
    mkldnn.fp32_precision = "bf16"
    try:
        yield
    finally:
        mkldnn.fp32_precision = saved


HOST_CONTEXTS = {
    "cpu bf16 autocast (A1111 fp8 storage on CPU)": lambda: torch.autocast("cpu", dtype=torch.bfloat16),
    "cpu fp16 autocast": lambda: torch.autocast("cpu", dtype=torch.float16),
    "inference mode (Forge)": torch.inference_mode,
    "default dtype float64": lambda: host_default_dtype(torch.float64),
    "float32 matmuls in bf16": host_fast_float32,
}
if torch.cuda.is_available():
    HOST_CONTEXTS["cuda fp16 autocast (A1111 half precision)"] = lambda: torch.autocast("cuda", dtype=torch.float16)


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    bad = [k for k in a if a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k])]
    assert not bad, f"{len(bad)} of {len(a)} tensors differ, e.g. {bad[:2]}"


@pytest.fixture(scope="module")
def alice_identity(model):
    return model.predict(ALICE, name="alice").identity


@pytest.mark.parametrize("context", list(HOST_CONTEXTS))
def test_expansion_is_bit_identical_in_any_host_context(model, alice_identity, context):
    plain = model.expand(alice_identity)
    with HOST_CONTEXTS[context]():
        inside = model.expand(alice_identity)
    assert_same(plain, inside)
    assert not any(t.is_inference() for t in inside.values())


def test_the_guard_is_needed_the_plain_math_changes_under_autocast(model, alice_identity):
    """Guards the test above: without ``own_numerics`` the same mixing differs under autocast."""
    tokens = alice_identity.tokens
    with torch.no_grad():
        plain = model.id_bank.mix(tokens)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = model.id_bank.mix(tokens)
    assert any(not torch.equal(a[0], b[0].to(a[0].dtype)) for a, b in zip(plain, autocast))


@pytest.mark.parametrize("context", list(HOST_CONTEXTS))
def test_prediction_and_load_are_bit_identical_in_any_host_context(locations, model, alice_identity, context):
    with HOST_CONTEXTS[context]():
        loaded = hyperlora_ext.load_model(locations.variant_dir("tiny_id"), device="cpu", dtype="fp32",
                                          models_dir=locations.root)
        inside = loaded.predict(ALICE, name="alice").identity
    assert torch.equal(inside.tokens, alice_identity.tokens)
    assert inside.hash == alice_identity.hash


def test_the_guard_restores_the_callers_context():
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.inference_mode(), host_fast_float32():
        with own_numerics():
            assert not torch.is_autocast_enabled("cpu") and not torch.is_inference_mode_enabled()
            assert torch.backends.mkldnn.matmul.fp32_precision == "ieee"
        assert torch.is_autocast_enabled("cpu") and torch.is_inference_mode_enabled()
        assert torch.backends.mkldnn.matmul.fp32_precision == "bf16"
    with pytest.raises(KeyError), own_numerics():
        raise KeyError("restored after an exception too")
    assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("dtype", ["fp32", "auto"])
def test_service_cache_history_does_not_change_the_weights(models_dir, tmp_path, dtype):
    """First use by a tag inside a generation (autocast + inference mode), then Save as LoRA, equals
    a fresh process whose first use is Save as LoRA (no autocast), and vice versa."""
    def service(folder):
        cfg = ServiceConfig(models_dir=models_dir, identities_dir=folder, device="cpu", dtype=dtype,
                            allow_download=False)
        return HyperLoRAService(lambda: cfg)

    first = service(tmp_path / "ids")
    identity = first.create_identity(ALICE, "alice", "tiny_id").identity
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.inference_mode():
        by_tag = first.loras.lora(identity).tensors
    saved_after_tag = first.save_lora("alice", tmp_path / "lora_a")

    fresh = service(tmp_path / "ids")  # like a WebUI restart: no cache
    saved_first = fresh.save_lora("alice", tmp_path / "lora_b")
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.inference_mode():
        by_tag_after_save = fresh.loras.lora(fresh.identities.get("alice")).tensors
    from safetensors.torch import load_file

    assert_same(by_tag, by_tag_after_save)
    assert_same(load_file(str(saved_after_tag)), load_file(str(saved_first)))
    assert_same(by_tag, load_file(str(saved_first)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_expansion_under_cuda_autocast(locations):
    cuda = hyperlora_ext.load_model(locations.variant_dir("tiny_id"), device="cuda", dtype="fp16",
                                    models_dir=locations.root, offload="resident")
    identity = cuda.predict(ALICE, name="alice").identity
    plain = cuda.expand(identity)
    with torch.autocast("cuda", dtype=torch.bfloat16), torch.inference_mode():
        inside = cuda.expand(identity)
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        tf32 = cuda.expand(identity)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
    assert_same(plain, inside)
    assert_same(plain, tf32)
