"""The Forge adapter (``webui/forge.py``) on the fake Forge (``tests/hosts/forge``): a tag becomes
patches on a clone of the UNet patcher in ``forge_objects_after_applying_lora``."""

import torch
from people import ALICE
from safetensors.torch import load_file


def _ours(unet):
    return {k: v for k, v in unet.lora_patches.items() if str(k[0]).startswith("hyperlora:")}


def _theirs(unet):
    return {k: v for k, v in unet.lora_patches.items() if not str(k[0]).startswith("hyperlora:")}


def _weights(sd_model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in sd_model.forge_objects.unet.model.state_dict().items()}


def test_tag_becomes_patches_with_the_saved_lora_file_tensors(forge):
    ext = forge.start_with_alice()
    assert "alice_file" in forge.networks.available_networks  # Save as LoRA told the Lora extension
    saved = load_file(forge.lora_dir / "alice_file.safetensors")
    sd_model = forge.shared.sd_model
    original = sd_model.forge_objects_original.unet

    p = forge.generate("photo <hyperlora:alice:0.7>")
    unet = sd_model.forge_objects.unet
    assert unet is sd_model.forge_objects_after_applying_lora.unet and unet is not original
    assert unet.model is original.model and original.lora_patches == {}  # a clone: same model, own patches
    [(identifier, patches)] = _ours(unet).items()
    key = ext.service.lora(ext.service.identity("alice")).key
    assert identifier == (f"hyperlora:{key}", 0.7, 1.0, False)
    assert p.extra_generation_params["HyperLoRA"].startswith("alice (")
    layers = {k.partition(".")[0] for k in saved}
    assert len(patches) == len(layers)
    for layer in layers:
        model_key = "diffusion_model." + _dotted(layer) + ".weight"
        [[strength, (kind, (up, down, alpha, mid, dora)), strength_model, offset, function]] = patches[model_key]
        assert (strength, kind, strength_model) == (0.7, "lora", 1.0)
        assert (offset, function, mid, dora) == (None, None, None, None)
        assert torch.equal(up, saved[f"{layer}.lora_up.weight"]) and up.dtype == saved[f"{layer}.lora_up.weight"].dtype
        assert torch.equal(down, saved[f"{layer}.lora_down.weight"])
        assert alpha == saved[f"{layer}.alpha"].item()
    tag_weights = _weights(sd_model)

    # Forge's own Lora extension loading the saved file at that weight patches the same tensors.
    forge.generate("photo <lora:alice_file:0.7>")
    unet = sd_model.forge_objects.unet
    assert _ours(unet) == {}
    [(identifier, from_file)] = _theirs(unet).items()
    assert identifier == (str(forge.lora_dir / "alice_file.safetensors"), 0.7, 1.0, False)
    assert set(from_file) == set(patches)
    for k, [[_, (_, tensors), *_]] in from_file.items():
        ours = patches[k][0][1][1]
        assert torch.equal(tensors[0], ours[0]) and torch.equal(tensors[1], ours[1]) and tensors[2] == ours[2]
    after_file = _weights(sd_model)
    assert all(torch.equal(tag_weights[k], after_file[k]) for k in tag_weights)


def _dotted(kohya_layer: str) -> str:
    """``lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_out_0`` -> the UNet's module name."""
    from tiny_sdxl import ATTENTIONS

    for attention, _, _ in ATTENTIONS:
        for projection in ("to_q", "to_k", "to_v", "to_out.0"):
            name = f"{attention}.{projection}"
            if "lora_unet_" + name.replace(".", "_") == kohya_layer:
                return name
    raise KeyError(kohya_layer)


def test_lora_rebuilds_keep_ours_in_either_tag_order(forge):
    forge.start_with_alice()
    sd_model = forge.shared.sd_model
    for prompt in ("photo <hyperlora:alice:0.7> <lora:alice_file:0.4>",
                   "photo <lora:alice_file:0.4> <hyperlora:alice:0.7>",
                   "photo <lora:alice_file:0.3> <hyperlora:alice:0.7>"):
        forge.generate(prompt, sample=False)
        unet = sd_model.forge_objects.unet
        assert [k[1] for k in _ours(unet)] == [0.7]
        assert [k[1] for k in _theirs(unet)] == [float(prompt.split("alice_file:")[1][:3])]


def test_a_generation_without_the_tag_restores_the_weights(forge):
    forge.start_with_alice(saved=None)
    sd_model = forge.shared.sd_model
    original = _weights(sd_model)
    forge.generate("photo <hyperlora:alice:1>")
    changed = _weights(sd_model)
    assert any(not torch.equal(original[k], changed[k]) for k in original)
    p = forge.generate("photo")
    assert sd_model.forge_objects.unet is sd_model.forge_objects_original.unet
    assert "HyperLoRA" not in p.extra_generation_params
    restored = _weights(sd_model)
    assert all(torch.equal(original[k], restored[k]) for k in original)


def test_weight_and_identity_changes_replace_the_patch(forge):
    ext = forge.start_with_alice(saved=None)
    sd_model = forge.shared.sd_model
    forge.generate("photo <hyperlora:alice:1>", sample=False)
    first = sd_model.forge_objects.unet
    forge.generate("photo <hyperlora:alice:1>", sample=False)
    assert sd_model.forge_objects.unet is first  # unchanged tags: the same patched UNet
    forge.generate("photo <hyperlora:alice:0.5>", sample=False)
    assert [k[1] for k in _ours(sd_model.forge_objects.unet)] == [0.5]
    ext.service.create_identity(ALICE[:1], "alice", "tiny_id", overwrite=True)  # a new version, same name
    forge.generate("photo <hyperlora:alice:0.5>", sample=False)
    [identifier] = _ours(sd_model.forge_objects.unet)
    assert identifier[0] == "hyperlora:" + ext.service.lora(ext.service.identity("alice")).key
    assert identifier != next(iter(_ours(first)))


def test_an_activation_error_leaves_nothing_applied_and_becomes_a_comment(forge):
    forge.start_with_alice(saved=None)
    forge.generate("photo <hyperlora:alice:1>", sample=False)
    assert _ours(forge.shared.sd_model.forge_objects.unet)
    model = forge.load_model(unet_seed=3)
    del model.forge_objects.unet.model.diffusion_model.output_blocks  # keys the LoRA cannot match
    p = forge.generate("photo <hyperlora:alice:1>")
    assert _ours(model.forge_objects.unet) == {} and model.forge_objects.unet is model.forge_objects_original.unet
    [text] = [c for c in p.comments if c.startswith("HyperLoRA: not applied")]
    assert "RuntimeError" in text and "have no match in this UNet" in text


def test_free_memory_asks_the_memory_manager(forge):
    ext = forge.start()
    from backend import memory_management

    ext._free_memory(3 << 30)
    assert memory_management.free_requests == [(3 << 30, torch.device("cpu"))]
