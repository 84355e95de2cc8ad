"""One activation of the extra network (``app.activation``) on the host's ``p`` shapes."""

from dataclasses import dataclass

import pytest
from host_shapes import Params, Processing

import hyperlora_ext
from hyperlora_ext.app.core.service import HyperLoRAService, ServiceConfig
from hyperlora_ext.app.generation.activation import (
    HIRES_INFOTEXT_KEY,
    add_tag_to_prompts,
    resolve_params,
    run_activation,
    script_tag,
)


def test_activation_adds_trigger_words_and_infotext(service, alice):
    params = [Params("alice", "0.7")]
    p = Processing(prompts=["photo of alice", "fcsks fxhks fhyks, alice"], hr_prompts=["hires alice"],
                   extra_network_data={"hyperlora": params}, hr_extra_network_data={})
    res = resolve_params(service, p, params, is_sdxl=True)
    assert [r.weight for r, _ in res.weights] == [0.7]
    assert p.prompts == ["fcsks fxhks fhyks, photo of alice", "fcsks fxhks fhyks, alice"]
    assert p.hr_prompts == ["hires alice"]  # the hires prompt has no tag of ours
    assert p.extra_generation_params["HyperLoRA"] == f"alice ({alice.hash}): 0.7, tiny_id"
    assert p.extra_generation_params["HyperLoRA trigger words"] == "auto"
    assert p.extra_generation_params["HyperLoRA version"] == hyperlora_ext.__version__
    p.is_hr_pass, p.hr_extra_network_data = True, {"hyperlora": params}
    resolve_params(service, p, params, is_sdxl=True)
    assert p.hr_prompts == ["fcsks fxhks fhyks, hires alice"] and HIRES_INFOTEXT_KEY in p.extra_generation_params


def test_trigger_words_infotext_only_when_added(service, alice):
    params = [Params("alice")]
    p = Processing(prompts=["fcsks fxhks fhyks, photo"], extra_network_data={"hyperlora": params})
    assert resolve_params(service, p, params, is_sdxl=True).weights
    assert p.prompts == ["fcsks fxhks fhyks, photo"] and "HyperLoRA" in p.extra_generation_params
    assert "HyperLoRA trigger words" not in p.extra_generation_params


def test_activation_warnings_and_non_sdxl(service, alice):
    p = Processing(prompts=["x"])
    res = resolve_params(service, p, [Params("alice", "lots"), Params("ghost")], is_sdxl=True)
    assert not res.weights and len(p.comments) == 2 and p.prompts == ["x"]
    assert "no identity named 'ghost'" in p.extra_generation_params["HyperLoRA warnings"]
    p = Processing(prompts=["x"], extra_network_data={"hyperlora": [Params("alice")]})
    res = resolve_params(service, p, [Params("alice")], is_sdxl=False)
    assert not res.weights and "not SDXL" in next(iter(p.comments))
    assert resolve_params(service, Processing(prompts=["x"]), [], True).weights == []
    assert "HyperLoRA version" not in p.extra_generation_params  # nothing applied: no version either


def test_trigger_words_setting_off(models_dir, tmp_path, alice, service):
    cfg = ServiceConfig(models_dir=models_dir, identities_dir=service.config.identity_folder, device="cpu",
                        dtype="fp32", auto_trigger_words=False)
    svc = HyperLoRAService(lambda: cfg)
    p = Processing(prompts=["photo"], extra_network_data={"hyperlora": [Params("alice")]})
    res = resolve_params(svc, p, [Params("alice")], True)
    assert res.weights and p.prompts == ["photo"] and res.weights[0][0].weight == 0.85


def test_run_activation_never_raises():
    p = Processing(prompts=["x"])
    cleaned = []

    def broken(p, params):
        raise RuntimeError("boom")

    run_activation(p, [], broken, on_error=lambda: cleaned.append(True))
    assert cleaned == [True] and "RuntimeError: boom" in next(iter(p.comments))


def test_script_args_add_the_tag():
    assert script_tag((False, "alice", 0.8, 0.0), 0.85) is None
    assert script_tag((True, "alice", 0.8, 0.0), 0.85) == "<hyperlora:alice:0.8>"
    assert script_tag(({"identity": "alice", "base": 0.4},), 0.85) == "<hyperlora:alice:0.85:0.4>"
    assert script_tag((), 0.85) is None
    with pytest.raises(ValueError, match="no identity"):
        script_tag((True, None, 1, 0), 0.85)
    with pytest.raises(ValueError, match="unknown HyperLoRA script argument"):
        script_tag(({"identity": "a", "strength": 1},), 0.85)

    @dataclass
    class P:
        all_prompts: list
        all_hr_prompts: list

    p = P(["photo", "photo <hyperlora:Alice:0.5>"], ["hr"])
    add_tag_to_prompts(p, "<hyperlora:alice:0.8>")
    assert p.all_prompts == ["photo <hyperlora:alice:0.8>", "photo <hyperlora:Alice:0.5>"]
    assert p.all_hr_prompts == ["hr <hyperlora:alice:0.8>"]
