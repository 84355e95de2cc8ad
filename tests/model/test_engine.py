"""The hypernetwork (``model.engine``) against an independent straightforward computation, shapes, averaging,
16-bit bases."""

import pytest
import torch
from builders import full_sdxl_modules, make_checkpoint
from reference import reference_lora

import hyperlora_ext
from hyperlora_ext import HyperLoRAError, Identity
from hyperlora_ext.identities.identity import pool_tokens
from hyperlora_ext.model.checkpoint import inspect_checkpoint
from hyperlora_ext.model.engine import HyperLoRAModel
from hyperlora_ext.model.precision import Precision

CLIP = 48


def features(n, seed=0, tokens=17):
    g = torch.Generator().manual_seed(seed)
    clip = torch.randn(n, tokens, CLIP, generator=g)
    ids = torch.nn.functional.normalize(torch.randn(n, 512, generator=g), dim=-1)
    return clip, ids


def assert_same(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].shape == b[k].shape, k
        torch.testing.assert_close(a[k].float(), b[k].float(), atol=atol, rtol=1e-4, msg=k)


@pytest.mark.parametrize("spelling", ["diffusers", "kohya", "compvis"])
def test_matches_reference_in_every_spelling(tmp_path, spelling):
    folder = make_checkpoint(tmp_path / "ck", spelling=spelling, dtype=torch.float32, clip_dim=CLIP, seed=3)
    model = hyperlora_ext.load_model(folder, device="cpu", dtype="fp32")
    clip, ids = features(1)
    lora = model.features_to_lora(clip, ids)
    ref = reference_lora(make_checkpoint(tmp_path / "ref", spelling="compvis", dtype=torch.float32,
                                         clip_dim=CLIP, seed=3), clip, ids, dim_head=16)
    assert_same(lora, ref)
    assert len(lora) == 3 * 4 * 4  # 4 modules x 4 layers x (down, up, alpha)
    assert float(lora["lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.alpha"]) == 4.0
    assert lora["lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight"].shape == (8, 24)
    assert lora["lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_out_0.lora_up.weight"].shape == (16, 8)


def test_multi_image_average(tmp_path):
    folder = make_checkpoint(tmp_path / "ck", spelling="compvis", dtype=torch.float32, clip_dim=CLIP, seed=4)
    model = hyperlora_ext.load_model(folder, device="cpu", dtype="fp32")
    clip, ids = features(3, seed=5)
    assert_same(model.features_to_lora(clip, ids), reference_lora(folder, clip, ids, dim_head=16))
    single = model.features_to_lora(clip[:1], ids[:1])
    key = next(iter(single))
    assert not torch.allclose(single[key + ""], model.features_to_lora(clip, ids)[key])
    # averaging happens on the un-normalised tokens: order does not matter
    perm = torch.tensor([2, 0, 1])
    assert_same(model.features_to_lora(clip[perm], ids[perm]), model.features_to_lora(clip, ids))


def test_base_lora_matches_reference(tmp_path):
    folder = make_checkpoint(tmp_path / "ck", spelling="compvis", dtype=torch.float32, base=True, clip_dim=CLIP)
    model = hyperlora_ext.load_model(folder, device="cpu", dtype="fp32")
    assert model.spec.has_base and model.spec.base_rank == 4
    clip, _ = features(2, seed=6)
    lora = model.features_to_lora(clip, None, mode="base")
    assert_same(lora, reference_lora(folder, clip, None, mode="base", dim_head=16))
    assert float(lora["lora_unet_middle_block_1_transformer_blocks_3_attn2_to_v.alpha"]) == 2.0


def test_clip_only_checkpoint(tmp_path):
    folder = make_checkpoint(tmp_path / "ck", spelling="compvis", dtype=torch.float32, clip_only=True, clip_dim=CLIP)
    model = hyperlora_ext.load_model(folder, device="cpu", dtype="fp32")
    assert model.spec.id_projector is None and model.spec.uses_clip
    clip, _ = features(1, seed=7)
    assert_same(model.features_to_lora(clip, None), reference_lora(folder, clip, None, dim_head=16))


def test_fp16_file_and_bf16_compute_stay_close(tmp_path):
    folder = make_checkpoint(tmp_path / "ck", spelling="compvis", dtype=torch.float16, clip_dim=CLIP)
    clip, ids = features(1, seed=8)
    exact = hyperlora_ext.load_model(folder, device="cpu", dtype="fp32").features_to_lora(clip, ids)
    assert_same(exact, reference_lora(folder, clip, ids, dim_head=16))
    bf16 = hyperlora_ext.load_model(folder, device="cpu", dtype="bf16").features_to_lora(clip, ids)
    key = "lora_unet_middle_block_1_transformer_blocks_3_attn2_to_q.lora_up.weight"
    err = (bf16[key].float() - exact[key]).norm() / exact[key].norm()
    assert bf16[key].dtype == torch.bfloat16 and err < 0.05


def test_feature_shape_errors(model):
    clip, ids = features(2)
    with pytest.raises(ValueError, match="2 CLIP feature sets but 1 ArcFace"):
        model.features_to_lora(clip, ids[:1])
    with pytest.raises(ValueError, match="needs ArcFace"):
        model.features_to_lora(clip, None)
    with pytest.raises(HyperLoRAError, match="no Base-LoRA"):
        model.features_to_lora(clip, ids, mode="base")


def test_full_sdxl_key_names_and_shapes(tmp_path):
    """All 140 SDXL modules at rank 8 (hyper dim 1 keeps the file small)."""
    folder = make_checkpoint(tmp_path / "sdxl", modules=full_sdxl_modules(), hyper_dim=1, clip_dim=CLIP, dim=16,
                             depth=1)
    model = hyperlora_ext.load_model(folder, device="cpu", dtype="fp32")
    assert len(model.spec.modules) == 140 and len(model.spec.layers) == 560
    assert sum(8 * (s.in_features + s.out_features) for s in model.spec.layers) == 11_612_160
    lora = model.features_to_lora(*features(1))
    downs = {k: v for k, v in lora.items() if k.endswith("lora_down.weight")}
    assert len(downs) == 560 and len(lora) == 3 * 560
    assert sum(v.numel() for k, v in lora.items() if not k.endswith(".alpha")) == 11_612_160
    assert lora["lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight"].shape == (8, 640)
    assert lora["lora_unet_input_blocks_8_1_transformer_blocks_9_attn2_to_k.lora_down.weight"].shape == (8, 2048)
    assert lora["lora_unet_middle_block_1_transformer_blocks_9_attn2_to_v.lora_up.weight"].shape == (1280, 8)
    assert lora["lora_unet_output_blocks_5_1_transformer_blocks_1_attn2_to_out_0.lora_up.weight"].shape == (640, 8)
    assert all(k.startswith("lora_unet_") and "blocks" in k for k in lora)


def test_cpu_bases_stay_16_bit_and_mix_with_float32_accumulation(tmp_path):
    """fp16 bases on the CPU (what CPUs without bf16 units get) stay fp16 in RAM (half of float32);
    widening them to float32 for the mix is exact: bit for bit the float32 bases' mix."""
    folder = make_checkpoint(tmp_path / "ck", modules=full_sdxl_modules()[:6], dtype=torch.float16, clip_dim=CLIP)
    auto = hyperlora_ext.load_model(folder, device="cpu", dtype="fp16")
    exact = hyperlora_ext.load_model(folder, device="cpu", dtype="fp32")
    assert all(stack.dtype == torch.float16 for _, stack in auto.id_bank.groups.values())
    assert auto.id_bank.nbytes * 2 == exact.id_bank.nbytes
    tokens = torch.nn.functional.normalize(torch.randn(8 * 6, exact.spec.hyper_dim), dim=-1)
    for (d16, u16), (d32, u32) in zip(auto.id_bank.mix(tokens), exact.id_bank.mix(tokens)):
        assert d16.dtype == torch.float32 and torch.equal(d16, d32) and torch.equal(u16, u32)


@pytest.mark.parametrize("dtype", ["auto", "bf16", "fp16"])
def test_16_bit_cpu_bases_stay_within_one_percent_of_float32(tmp_path, dtype):
    folder = make_checkpoint(tmp_path / "ck", dtype=torch.float32, clip_dim=CLIP)
    auto = hyperlora_ext.load_model(folder, device="cpu", dtype=dtype)
    assert auto.id_bank.nbytes * 2 == hyperlora_ext.load_model(folder, device="cpu", dtype="fp32").id_bank.nbytes
    exact = hyperlora_ext.load_model(folder, device="cpu", dtype="fp32")
    tokens = torch.nn.functional.normalize(torch.randn(8 * len(exact.spec.modules), exact.spec.hyper_dim), dim=-1)
    for (d16, u16), (d32, u32) in zip(auto.id_bank.mix(tokens), exact.id_bank.mix(tokens)):
        for a, b in ((d16, d32), (u16, u32)):
            assert ((a.float() - b).norm() / b.norm()).item() < 0.01


def test_precomputed_latents_do_not_depend_on_where_the_weights_rest(tmp_path):
    """#26 A6: the resampler's input-independent first self-attention is computed once at load time.
    An offloaded CUDA fp16 model holds its fp16 weights on the CPU (it loads without a GPU), a resident
    one on the GPU; both must precompute the same values: float32 on the CPU, stored in fp16."""
    spec = inspect_checkpoint(make_checkpoint(tmp_path / "ck", clip_dim=CLIP, dtype=torch.float16, seed=9))
    offloaded = HyperLoRAModel(spec, Precision(torch.device("cuda"), torch.float16, torch.float16), offload="offload")
    reference = HyperLoRAModel(spec, Precision(torch.device("cpu"), torch.float32, torch.float32))
    ours = offloaded.resampler._first_latents
    assert ours.dtype == torch.float16 and ours.device.type == "cpu"
    assert torch.equal(ours, reference.resampler._first_latents.half())


def test_an_offloaded_model_moves_only_what_a_call_uses(tmp_path):
    """#26 C: in offload mode an expansion brings only the bases to the GPU and a prediction only the
    networks (plans of an offloaded CUDA model, which rests on the CPU and so loads without a GPU);
    on the CPU, ``expand`` and ``image_tokens`` use exactly those groups."""
    from hyperlora_ext.model.engine import PARTS
    from hyperlora_ext.model.placement import Step

    spec = inspect_checkpoint(make_checkpoint(tmp_path / "ck", clip_dim=CLIP, base=True, seed=10))
    asked = []
    offloaded = HyperLoRAModel(spec, Precision(torch.device("cuda"), torch.float16, torch.float16),
                               offload="offload", make_room=asked.append)
    assert asked == [] and offloaded.placement.offload and offloaded.placement.store == torch.device("cpu")
    for group, names in (("bases", ["id bases", "base bases"]), ("networks", ["resampler", "base resampler",
                                                                             "id projector"])):
        steps = offloaded.placement.plan_use(*PARTS[group])
        assert [s.what for s in steps if s.action == "move" and s.device == "cuda"] == names
        assert steps[0] == Step("make room", "+".join(names), "cuda", nbytes=offloaded.placement.nbytes(*names))
    model = HyperLoRAModel(spec, Precision(torch.device("cpu"), torch.float32, torch.float32))
    clip, ids = features(1)
    identity = Identity(tokens=pool_tokens(model.image_tokens(clip, ids)), base_tokens=pool_tokens(
        model.image_tokens(clip, None, "base")), variant=spec.variant, model_fingerprint=spec.fingerprint)
    model.expand(identity, base_weight=0.5)
    uses = [s.what for s in model.placement.record if s.action == "use"]
    assert uses[:2] == ["resampler+base resampler+id projector"] * 2  # image_tokens, twice
    assert len(uses) > 2 and set(uses[2:]) == {"id bases+base bases"}  # expand (and the uses nested in it)
