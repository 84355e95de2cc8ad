"""Several ``<hyperlora>`` tags in one prompt: the same identity twice adds its weights (like
stacking the LoRA), differing base weights apply side by side, and a slider pair at +w / -w
applies both identities. Real tiny models (conftest) and real identity files."""

from __future__ import annotations

import math

import pytest
import torch
from face_pack import face_image
from host_shapes import Params, Processing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperlora_ext.app.core.service import HyperLoRAService, LoRAWeights, ServiceConfig
from hyperlora_ext.app.core.tags import TagRequest, format_infotext
from hyperlora_ext.app.generation.activation import resolve_params


@pytest.fixture(scope="module")
def service(models_dir, tmp_path_factory) -> HyperLoRAService:
    """Identities ``smiling`` and ``neutral`` of the Base-LoRA checkpoint ``tiny_base``."""
    cfg = ServiceConfig(models_dir=models_dir, identities_dir=tmp_path_factory.mktemp("identities"),
                        device="cpu", dtype="fp32", allow_download=False)
    svc = HyperLoRAService(lambda: cfg)
    svc.create_identity([face_image(feature=(170, 110, 90), seed=1)], "smiling", "tiny_base")
    svc.create_identity([face_image(feature=(250, 215, 190), seed=4)], "neutral", "tiny_base")
    return svc


def dense(weights: LoRAWeights, layer: str) -> torch.Tensor:
    """The weight change one LoRA makes to ``layer`` at multiplier 1: up @ down * alpha / rank."""
    t = weights.tensors
    down, up = t[f"{layer}.lora_down.weight"].double(), t[f"{layer}.lora_up.weight"].double()
    return up @ down * float(t[f"{layer}.alpha"]) / down.shape[0]


def applied_delta(service: HyperLoRAService, requests: list[TagRequest], layer: str) -> torch.Tensor:
    """What the host applies to ``layer`` for these tags: the sum of multiplier x LoRA delta."""
    out = service.resolve(requests)
    return sum((req.weight * dense(w, layer) for req, w in out.weights), torch.zeros(()))


def a_layer(service: HyperLoRAService) -> str:
    t = service.loras.lora(service.identities.get("smiling")).tensors
    return next(k for k in t if k.endswith(".lora_down.weight")).removesuffix(".lora_down.weight")


def test_same_identity_twice_is_the_sum_of_the_weights(service):
    out = service.resolve([TagRequest("smiling", 0.5), TagRequest("neutral", 0.2), TagRequest("Smiling", 0.3)])
    assert [(w.identity.name, r.weight) for r, w in out.weights] == [("smiling", 0.8), ("neutral", 0.2)]
    assert [a.weight for a in out.applied] == [0.8, 0.2]
    smiling = service.identities.get("smiling")
    assert format_infotext(out.applied).startswith(f"smiling ({smiling.hash}): 0.8, tiny_base")
    assert out.warnings == ["HyperLoRA: 'smiling' is tagged 2 times; applied once at the sum of the weights, "
                            "0.5 + 0.3 = 0.8"]
    layer = a_layer(service)
    once = dense(service.loras.lora(service.identities.get("smiling")), layer)
    assert torch.allclose(applied_delta(service, [TagRequest("smiling", 0.5), TagRequest("smiling", 0.3)], layer),
                          0.8 * once, rtol=1e-12, atol=0)
    assert once.abs().max() > 0


def test_differing_base_weights_apply_side_by_side(service):
    """w1 (ID + b1 Base) + w2 (ID + b2 Base): the ID-LoRA at w1 + w2, the Base-LoRA at w1 b1 + w2 b2."""
    out = service.resolve([TagRequest("smiling", 0.6, 0.4), TagRequest("smiling", 0.2, 0.0)])
    assert [(r.weight, w.base) for r, w in out.weights] == [(0.6, 0.4), (0.2, 0.0)]
    assert len({w.key for _, w in out.weights}) == 2 and not out.warnings
    layer = a_layer(service)
    ident = service.identities.get("smiling")
    id_only = dense(service.loras.lora(ident, 0.0), layer)
    base_only = (dense(service.loras.lora(ident, 1.0), layer) - id_only)  # the Base-LoRA's own delta
    want = 0.8 * id_only + (0.6 * 0.4) * base_only
    got = applied_delta(service, [TagRequest("smiling", 0.6, 0.4), TagRequest("smiling", 0.2, 0.0)], layer)
    assert torch.allclose(got, want, rtol=0, atol=1e-3 * float(want.abs().max()))  # fp16 file tensors
    assert base_only.abs().max() > 0


def test_slider_pair_applies_both_signs_together(service):
    """``<hyperlora:smiling:0.7><hyperlora:neutral:-0.7>``: two LoRAs, 0.7 (smiling - neutral) in all."""
    params = [Params("smiling", "0.7"), Params("neutral", "-0.7")]
    p = Processing(prompts=["a portrait"], extra_network_data={"hyperlora": params})
    out = resolve_params(service, p, params, is_sdxl=True)
    assert [(w.identity.name, r.weight) for r, w in out.weights] == [("smiling", 0.7), ("neutral", -0.7)]
    assert not p.comments and p.prompts == ["fcsks fxhks fhyks, a portrait"]
    s, n = service.identities.get("smiling"), service.identities.get("neutral")
    assert p.extra_generation_params["HyperLoRA"] == (f"smiling ({s.hash}): 0.7, tiny_base; "
                                                      f"neutral ({n.hash}): -0.7, tiny_base")
    layer = a_layer(service)
    got = sum(r.weight * dense(w, layer) for r, w in out.weights)
    want = 0.7 * (dense(service.loras.lora(s), layer) - dense(service.loras.lora(n), layer))
    assert torch.allclose(got, want, rtol=1e-12, atol=0) and want.abs().max() > 0


NAMES = st.sampled_from(["smiling", "SMILING", "neutral", "ghost"])
WEIGHTS = st.integers(-40, 40).map(lambda i: i / 4)
BASES = st.sampled_from([0.0, 0.4])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(NAMES, WEIGHTS, BASES), max_size=8))
def test_any_tag_list_resolves_to_summed_weights(service, tags):
    """One entry per (identity, base weight) in order of first appearance, at the sum of its tags'
    weights; a note for each identity tagged more than once, a warning per unknown tag."""
    out = service.resolve([TagRequest(n, w, b) for n, w, b in tags])
    want: dict[tuple[str, float], list[float]] = {}
    for n, w, b in tags:
        if n != "ghost":
            want.setdefault((n.lower(), b), []).append(w)
    got = [((w.identity.name, w.base), r.weight) for r, w in out.weights]
    assert got == [(k, math.fsum(ws)) for k, ws in want.items()]
    assert [(a.name, a.base, a.weight) for a in out.applied] == [(k[0], k[1], math.fsum(ws)) for k, ws in want.items()]
    notes = [x for x in out.warnings if "applied once at the sum" in x]
    assert len(notes) == sum(len(ws) > 1 for ws in want.values())
    assert sum("no identity named 'ghost'" in x for x in out.warnings) == sum(n == "ghost" for n, _, _ in tags)
    assert len({w.key for _, w in out.weights}) == len(out.weights)  # hosts key their objects by it


def test_resolve_turns_problems_into_warnings(models_dir, tmp_path):
    cfg = ServiceConfig(models_dir=models_dir, identities_dir=tmp_path, device="cpu", dtype="fp32",
                        allow_download=False)
    plain = HyperLoRAService(lambda: cfg)
    plain.create_identity([face_image(seed=1)], "alice", "tiny_id")  # a checkpoint without Base-LoRA
    res = plain.resolve([TagRequest("nobody", 1.0), TagRequest("alice", 0.5, 0.4), TagRequest("alice", 0.9)])
    assert "no identity named 'nobody'" in res.warnings[0] and "known: alice" in res.warnings[0]
    assert "has no Base-LoRA" in res.warnings[1]
    assert "tagged 2 times; applied once at the sum of the weights, 0.5 + 0.9 = 1.4" in res.warnings[2]
    assert [(r.weight, w.base) for r, w in res.weights] == [(1.4, 0.0)]
