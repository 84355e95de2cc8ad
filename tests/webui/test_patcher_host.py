"""The Forge-family adapters (``webui/patcher_host.py`` with ``forge.py`` or ``ldm_patched.py``) on the three
fake Forge hosts: a tag becomes patches on a clone of the UNet patcher in ``forge_objects_after_applying_lora``,
exactly the patches the host's own Lora extension adds for the same LoRA saved as a file."""

from __future__ import annotations

import pytest
import torch
from people import ALICE
from safetensors.torch import load_file


def patch_entries(host: str, unet) -> dict[str, list[tuple]]:
    """Each patched key of ``unet`` -> its patches as ``(strength, up, down, alpha)``, in the order the host
    merges them; read from the host's own storage (Forge: ``lora_patches`` per identifier; reForge:
    ``patches`` of ``LoRAAdapter`` 5-tuples; Classic: ``patches`` of ``("lora", ...)`` 3-tuples)."""
    out: dict[str, list[tuple]] = {}
    if host == "forge":
        for patches in unet.lora_patches.values():
            for key, entries in patches.items():
                for strength, (_, (up, down, alpha, _mid, _dora)), *_ in entries:
                    out.setdefault(key, []).append((strength, up, down, alpha))
    elif host == "reforge":
        for key, entries in unet.patches.items():
            for strength, adapter, _strength_model, _offset, _function in entries:
                up, down, alpha = adapter.weights[:3]
                out.setdefault(key, []).append((strength, up, down, alpha))
    else:
        for key, entries in unet.patches.items():
            for strength, (_, (up, down, alpha, _mid)), _strength_model in entries:
                out.setdefault(key, []).append((strength, up, down, alpha))
    return out


def ours(host: str, unet) -> dict[str, list[tuple]]:
    """The patches our clone added on top of the UNet it was made from."""
    base = getattr(unet, "hyperlora_base", None)
    if base is None:
        return {}
    before = patch_entries(host, base)
    return {k: v[len(before.get(k, [])):] for k, v in patch_entries(host, unet).items() if v[len(before.get(k, [])):]}


def strengths(entries: dict[str, list[tuple]]) -> list[float]:
    return sorted({e[0] for patches in entries.values() for e in patches})


def _weights(sd_model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in sd_model.forge_objects.unet.model.state_dict().items()}


def _dotted(kohya_layer: str) -> str:
    """``lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_out_0`` -> the UNet's module name."""
    from tiny_sdxl import ATTENTIONS

    for attention, _, _ in ATTENTIONS:
        for projection in ("to_q", "to_k", "to_v", "to_out.0"):
            name = f"{attention}.{projection}"
            if "lora_unet_" + name.replace(".", "_") == kohya_layer:
                return name
    raise KeyError(kohya_layer)


def test_tag_patches_equal_the_saved_lora_files_and_merge_the_same_weights(patcher_host):
    host = patcher_host.name
    patcher_host.start_with_alice()
    saved = load_file(patcher_host.lora_dir / "alice_file.safetensors")
    sd_model = patcher_host.shared.sd_model
    original = sd_model.forge_objects_original.unet

    p = patcher_host.generate("photo <hyperlora:alice:0.7>")
    unet = sd_model.forge_objects.unet
    assert unet is sd_model.forge_objects_after_applying_lora.unet and unet is not original
    assert unet.model is original.model and patch_entries(host, original) == {}  # a clone: same model
    assert p.extra_generation_params["HyperLoRA"].startswith("alice (")
    tag_patches = ours(host, unet)
    layers = {k.partition(".")[0] for k in saved}
    assert set(tag_patches) == {"diffusion_model." + _dotted(layer) + ".weight" for layer in layers}
    for layer in layers:
        [(strength, up, down, alpha)] = tag_patches["diffusion_model." + _dotted(layer) + ".weight"]
        assert strength == 0.7 and alpha == saved[f"{layer}.alpha"].item()
        assert torch.equal(up, saved[f"{layer}.lora_up.weight"]) and up.dtype == saved[f"{layer}.lora_up.weight"].dtype
        assert torch.equal(down, saved[f"{layer}.lora_down.weight"])
    tag_weights = _weights(sd_model)

    # The host's own Lora extension loading the saved file at that weight patches and merges the same.
    patcher_host.generate("photo <lora:alice_file:0.7>")
    unet = sd_model.forge_objects.unet
    assert ours(host, unet) == {}
    from_file = patch_entries(host, unet)
    assert set(from_file) == set(tag_patches)
    for key, [(strength, up, down, alpha)] in from_file.items():
        [(ours_strength, our_up, our_down, our_alpha)] = tag_patches[key]
        assert (strength, alpha) == (ours_strength, our_alpha)
        assert torch.equal(up, our_up) and torch.equal(down, our_down)
    after_file = _weights(sd_model)
    assert all(torch.equal(tag_weights[k], after_file[k]) for k in tag_weights)


def test_lora_rebuilds_keep_ours_after_theirs_in_either_tag_order(patcher_host):
    host = patcher_host.name
    patcher_host.start_with_alice()
    sd_model = patcher_host.shared.sd_model
    for prompt, theirs in (("photo <hyperlora:alice:0.7> <lora:alice_file:0.4>", 0.4),
                           ("photo <lora:alice_file:0.4> <hyperlora:alice:0.7>", 0.4),
                           ("photo <lora:alice_file:0.3> <hyperlora:alice:0.7>", 0.3)):
        patcher_host.generate(prompt, sample=False)
        unet = sd_model.forge_objects.unet
        assert strengths(ours(host, unet)) == [0.7]
        assert strengths(patch_entries(host, unet.hyperlora_base)) == [theirs]
        assert all([e[0] for e in entries] == [theirs, 0.7] for entries in patch_entries(host, unet).values())


def test_a_generation_without_the_tag_restores_the_weights(patcher_host):
    patcher_host.start_with_alice(saved=None)
    sd_model = patcher_host.shared.sd_model
    original = _weights(sd_model)
    patcher_host.process_images("photo <hyperlora:alice:1>")
    changed = _weights(sd_model)
    assert any(not torch.equal(original[k], changed[k]) for k in original)
    p = patcher_host.process_images("photo")
    assert sd_model.forge_objects.unet is sd_model.forge_objects_original.unet
    assert "HyperLoRA" not in p.extra_generation_params
    restored = _weights(sd_model)
    assert all(torch.equal(original[k], restored[k]) for k in original)


def test_weight_and_identity_changes_replace_the_patch(patcher_host):
    host = patcher_host.name
    ext = patcher_host.start_with_alice(saved=None)
    sd_model = patcher_host.shared.sd_model
    patcher_host.generate("photo <hyperlora:alice:1>", sample=False)
    first = sd_model.forge_objects.unet
    patcher_host.generate("photo <hyperlora:alice:1>", sample=False)
    assert sd_model.forge_objects.unet is first  # unchanged tags: the same patched UNet
    patcher_host.generate("photo <hyperlora:alice:0.5>", sample=False)
    assert strengths(ours(host, sd_model.forge_objects.unet)) == [0.5]
    ext.service.create_identity(ALICE[:1], "alice", "tiny_id", overwrite=True)  # a new version, same name
    patcher_host.generate("photo <hyperlora:alice:0.5>", sample=False)
    new = ours(host, sd_model.forge_objects.unet)
    old = ours(host, first)
    assert set(new) == set(old) and any(not torch.equal(new[k][0][1], old[k][0][1]) for k in new)


def test_an_activation_error_leaves_nothing_applied_and_becomes_a_comment(patcher_host):
    patcher_host.start_with_alice(saved=None)
    patcher_host.generate("photo <hyperlora:alice:1>", sample=False)
    model = patcher_host.load_model(unet_seed=3)
    del model.forge_objects.unet.model.diffusion_model.output_blocks  # keys the LoRA cannot match
    p = patcher_host.generate("photo <hyperlora:alice:1>")
    assert model.forge_objects.unet is model.forge_objects_original.unet
    [text] = [c for c in p.comments if c.startswith("HyperLoRA: not applied")]
    assert "RuntimeError" in text and "have no match in this UNet" in text


def test_deactivate_takes_ours_off_the_lora_result(patcher_host):
    ext = patcher_host.start_with_alice()
    sd_model = patcher_host.shared.sd_model
    p = patcher_host.generate("photo <lora:alice_file:0.4> <hyperlora:alice:0.7>", sample=False)
    with_ours = sd_model.forge_objects_after_applying_lora.unet
    patcher_host.extra_networks.deactivate(p, p.extra_network_data)
    assert ext.host.active == []
    assert sd_model.forge_objects_after_applying_lora.unet is with_ours.hyperlora_base  # the user's LoRA stays


def test_a_checkpoint_switch_after_a_tag_leaves_nothing_stale(patcher_host):
    """#26 A4: a ``<hyperlora>`` generation, a switch to a model whose keys do not match, then a generation
    with only ``<lora:x>``: the host's Lora activation must not get our stale identity (nor an exception)."""
    patcher_host.start_with_alice()
    patcher_host.process_images("photo <hyperlora:alice:1>")
    model = patcher_host.load_model(unet_seed=3)
    del model.forge_objects.unet.model.diffusion_model.output_blocks  # another architecture
    p = patcher_host.process_images("photo <lora:alice_file:1>")
    assert patcher_host.reported() == []  # the host caught nothing
    assert "Lora hashes" in p.extra_generation_params  # its activation ran to the end
    assert not hasattr(model.forge_objects.unet, "hyperlora_key")
    assert "HyperLoRA warnings" not in p.extra_generation_params


def test_stale_identities_are_dropped_when_a_generation_runs_without_our_script(patcher_host):
    """A checkpoint switch, then a pass without our Script's ``process`` (another extension's own
    ``process_images``): the model changed, so what the last activation left is not re-applied."""
    patcher_host.start_with_alice()
    patcher_host.generate("photo <hyperlora:alice:1>")
    model = patcher_host.load_model(unet_seed=3)
    del model.forge_objects.unet.model.diffusion_model.output_blocks
    p = patcher_host.generate("photo <lora:alice_file:1>")
    assert patcher_host.reported() == [] and "Lora hashes" in p.extra_generation_params
    assert not hasattr(model.forge_objects_after_applying_lora.unet, "hyperlora_key")


def test_a_failure_inside_the_wrapper_never_reaches_the_host(patcher_host, monkeypatch):
    """The host rebuilds its LoRAs while ours from the last pass are active, and ours fail to go on (here the
    host's patcher runs out of memory for any patch set at strength 1, which only ours use): its Lora
    activation goes on, ours are off, and the generation's infotext says why."""
    patcher_host.start_with_alice()
    patcher_host.generate("photo <hyperlora:alice:1> <lora:alice_file:0.5>", sample=False)
    unet_class = type(patcher_host.shared.sd_model.forge_objects_original.unet)
    real = unet_class.add_patches

    def out_of_memory_at_strength_1(self, *args, **kwargs):
        if kwargs.get("strength_patch", args[1] if len(args) > 1 else None) == 1:
            raise MemoryError("the host's patcher ran out of memory")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(unet_class, "add_patches", out_of_memory_at_strength_1)
    p = patcher_host.generate("photo <lora:alice_file:0.6> <hyperlora:alice:1>", sample=False)
    assert patcher_host.reported() == [] and "Lora hashes" in p.extra_generation_params
    warning = p.extra_generation_params["HyperLoRA warnings"]
    assert warning.startswith("removed after an error while the WebUI re-applied its LoRAs (MemoryError: ")
    assert "not applied (MemoryError: " in warning  # then our own activation, which failed the same way
    sd_model = patcher_host.shared.sd_model
    assert not hasattr(sd_model.forge_objects_after_applying_lora.unet, "hyperlora_key")
    assert strengths(patch_entries(patcher_host.name, sd_model.forge_objects.unet)) == [0.6]


def test_free_memory_asks_the_memory_manager(patcher_host):
    ext = patcher_host.start()
    if patcher_host.name == "forge":
        from backend import memory_management
    else:
        from ldm_patched.modules import model_management as memory_management
    ext._free_memory(3 << 30)
    assert memory_management.free_requests == [(3 << 30, torch.device("cpu"))]


@pytest.mark.parametrize("prompt", ["photo <hyperlora:ghost:1>", "photo <hyperlora:alice:lots>"])
def test_bad_tags_are_comments_not_errors(patcher_host, prompt):
    patcher_host.start_with_alice(saved=None)
    p = patcher_host.generate(prompt)
    sd_model = patcher_host.shared.sd_model
    assert sd_model.forge_objects.unet is sd_model.forge_objects_original.unet and p.comments
