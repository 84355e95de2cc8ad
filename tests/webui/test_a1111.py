"""The A1111 adapter (``webui/a1111.py``) on the fake A1111 1.10.1 and its built-in Lora extension
(``tests/hosts/a1111``): a tag becomes a ``network.Network`` in ``networks.loaded_networks``."""

import pytest
import torch
from people import BOB
from safetensors.torch import load_file


def _ours(networks):
    return [n for n in networks.loaded_networks if getattr(n, "hyperlora", False)]


def _weights(sd_model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in sd_model.model.state_dict().items()}


def test_tag_becomes_network_with_the_saved_lora_file_tensors(a1111):
    ext = a1111.start_with_alice()
    networks = a1111.networks
    assert "alice_file" in networks.available_networks  # Save as LoRA told the Lora extension
    saved = load_file(a1111.lora_dir / "alice_file.safetensors")

    p = a1111.generate("photo <hyperlora:alice:0.7>")
    [net] = networks.loaded_networks
    assert _ours(networks) == [net] and net.te_multiplier == net.unet_multiplier == 0.7
    assert net.mentioned_name is None and "Lora hashes" not in p.extra_generation_params
    identity = ext.service.identities.get("alice")
    assert p.extra_generation_params["HyperLoRA"] == f"alice ({identity.hash}): 0.7, tiny_id"
    layers = {k.partition(".")[0] for k in saved}
    assert set(net.modules) == {k.replace("lora_unet_", "diffusion_model_", 1) for k in layers}
    for layer in layers:
        module = net.modules[layer.replace("lora_unet_", "diffusion_model_", 1)]
        for model, part in ((module.up_model, "lora_up.weight"), (module.down_model, "lora_down.weight")):
            assert model.weight.dtype == saved[f"{layer}.{part}"].dtype
            assert torch.equal(model.weight, saved[f"{layer}.{part}"])  # bit for bit
        assert module.alpha == saved[f"{layer}.alpha"].item()
        assert module.dim == saved[f"{layer}.lora_down.weight"].shape[0]
    tag_weights = _weights(a1111.shared.sd_model)

    # The Lora extension loading the saved file at the same weight merges exactly the same UNet weights.
    a1111.generate("photo <lora:alice_file:0.7>")
    [from_file] = networks.loaded_networks
    assert from_file.network_on_disk.filename == str(a1111.lora_dir / "alice_file.safetensors")
    assert set(from_file.modules) == set(net.modules)
    after_file = _weights(a1111.shared.sd_model)
    assert all(torch.equal(tag_weights[k], after_file[k]) for k in tag_weights)


def test_the_merge_is_weight_times_alpha_over_rank_times_up_down(a1111):
    a1111.start_with_alice(saved="alice_file")
    saved = load_file(a1111.lora_dir / "alice_file.safetensors")
    sd_model = a1111.shared.sd_model
    before = _weights(sd_model)
    a1111.generate("photo <hyperlora:alice:0.5>")
    after = _weights(sd_model)
    layer = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"
    key = "diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight"
    up, down, alpha = saved[f"{layer}.lora_up.weight"], saved[f"{layer}.lora_down.weight"], saved[f"{layer}.alpha"]
    expected = before[key] + 0.5 * alpha.item() / down.shape[0] * (up.float() @ down.float())
    torch.testing.assert_close(after[key], expected, rtol=1e-2, atol=1e-3)
    untouched = "diffusion_model.input_blocks.5.1.transformer_blocks.0.attn1.to_q.weight"
    assert torch.equal(after[untouched], before[untouched])


def test_load_networks_resets_keep_ours_in_either_tag_order(a1111):
    a1111.start_with_alice()
    networks = a1111.networks
    for prompt in ("photo <hyperlora:alice:0.7> <lora:alice_file:0.4>",
                   "photo <lora:alice_file:0.4> <hyperlora:alice:0.7>"):
        a1111.generate(prompt)
        assert [n.unet_multiplier for n in networks.loaded_networks if not getattr(n, "hyperlora", False)] == [0.4]
        assert [n.unet_multiplier for n in _ours(networks)] == [0.7]
    networks.load_networks([])  # e.g. another extension's own call: the list is cleared, ours come back
    assert [n.unet_multiplier for n in networks.loaded_networks] == [0.7]


def test_a_generation_without_the_tag_restores_the_weights(a1111):
    a1111.start_with_alice(saved=None)
    sd_model = a1111.shared.sd_model
    original = _weights(sd_model)
    a1111.generate("photo <hyperlora:alice:1>")
    changed = _weights(sd_model)
    assert any(not torch.equal(original[k], changed[k]) for k in original)
    p = a1111.generate("photo")
    assert a1111.networks.loaded_networks == [] and "HyperLoRA" not in p.extra_generation_params
    restored = _weights(sd_model)
    assert all(torch.equal(original[k], restored[k]) for k in original)


def test_networks_are_cached_per_identity_version_and_model(a1111):
    ext = a1111.start_with_alice(saved=None)
    ext.service.create_identity([BOB], "bob", "tiny_id")
    a1111.generate("photo <hyperlora:alice:1>")
    [first] = a1111.networks.loaded_networks
    a1111.generate("photo <hyperlora:alice:0.5> <hyperlora:bob:0.5>")
    assert a1111.networks.loaded_networks[0] is first and first.unet_multiplier == 0.5
    a1111.load_model(unet_seed=1)  # another checkpoint: the networks point at its layers
    a1111.generate("photo <hyperlora:alice:1>")
    [again] = a1111.networks.loaded_networks
    assert again is not first
    layer = "diffusion_model_input_blocks_4_1_transformer_blocks_0_attn1_to_q"
    assert again.modules[layer].sd_module is a1111.shared.sd_model.network_layer_mapping[layer]


def test_layers_missing_from_the_model_skip_the_tag_with_a_comment(a1111):
    a1111.start_with_alice(saved=None)
    model = a1111.load_model()
    del model.model.diffusion_model.output_blocks  # not an SDXL UNet after all
    del model.network_layer_mapping  # layer names assigned afresh by the adapter
    p = a1111.generate("photo <hyperlora:alice:1>", sample=False)
    assert a1111.networks.loaded_networks == []
    assert any("have no match in this model" in c and "skipped" in c for c in p.comments)


def test_an_activation_error_leaves_nothing_applied_and_becomes_a_comment(a1111):
    a1111.start_with_alice(saved=None)
    a1111.generate("photo <hyperlora:alice:1>")
    assert _ours(a1111.networks)
    model = a1111.load_model(unet_seed=2)
    attention = model.model.get_submodule("diffusion_model.middle_block.1.transformer_blocks.3.attn2")
    attention.to_k = torch.nn.Embedding(24, 32)  # a layer type the Lora extension cannot patch
    a1111.networks.assign_network_names_to_compvis_modules(model)
    p = a1111.generate("photo <hyperlora:alice:1>")
    assert a1111.networks.loaded_networks == []
    [text] = [c for c in p.comments if c.startswith("HyperLoRA: not applied")]
    assert "AssertionError" in text and "unsupported type: Embedding" in text
    assert "not applied" in p.extra_generation_params["HyperLoRA warnings"]


@pytest.mark.parametrize("prompt", ["photo <hyperlora:ghost:1>", "photo <hyperlora:alice:lots>"])
def test_bad_tags_are_comments_not_errors(a1111, prompt):
    a1111.start_with_alice(saved=None)
    p = a1111.generate(prompt)
    assert a1111.networks.loaded_networks == [] and p.comments


def test_deactivate_and_a_checkpoint_switch_leave_no_network_of_ours(a1111):
    """#26 A4 on A1111: the end of a generation with tags takes ours out of ``loaded_networks``; after a
    checkpoint switch, a pass without our Script (another extension's ``process_images``) and without tags
    gets nothing of the last generation's identities."""
    ext = a1111.start_with_alice()
    networks = a1111.networks
    p = a1111.process_images("photo <hyperlora:alice:1>")
    assert _ours(networks) == [] and ext.host.active == [] and "HyperLoRA" in p.extra_generation_params
    a1111.generate("photo <hyperlora:alice:1>", sample=False)  # no Script, no deactivate: ours stay
    assert _ours(networks)
    a1111.load_model(unet_seed=1)
    a1111.generate("photo <lora:alice_file:1>", sample=False)
    assert [n.name for n in networks.loaded_networks] == ["alice_file"] and a1111.reported() == []


def test_cached_networks_do_not_keep_an_unloaded_model_alive(a1111):
    """The cache follows the model object, not ``id(sd_model)`` (which a later model can reuse after garbage
    collection), and lets an unloaded model's layers go."""
    import gc
    import weakref

    a1111.start_with_alice(saved=None)
    a1111.process_images("photo <hyperlora:alice:1>")
    layer = "diffusion_model_input_blocks_4_1_transformer_blocks_0_attn1_to_q"
    old_model = weakref.ref(a1111.shared.sd_model)
    old_layer = weakref.ref(a1111.shared.sd_model.network_layer_mapping[layer])
    a1111.load_model(unet_seed=1)
    gc.collect()
    assert old_model() is None and old_layer() is None
    a1111.process_images("photo <hyperlora:alice:1>")
