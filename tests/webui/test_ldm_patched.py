"""The ``ldm_patched`` adapter (``webui/ldm_patched.py``) on the fake reForge and Forge Classic
(``tests/hosts/reforge``, ``tests/hosts/classic``): what differs inside the family. The behaviour it shares
with the new-Forge adapter is in ``test_patcher_host.py``."""

import pytest
import torch


@pytest.fixture(params=["reforge", "classic"])
def ldm_host(request):
    return request.getfixturevalue(request.param)


def test_load_lora_as_each_host_returns_it(ldm_host):
    """reForge's ``load_lora`` returns the patches (``LoRAAdapter`` objects), Classic's a pair with
    ``("lora", ...)`` tuples; either way our clone carries one patch per layer."""
    ext = ldm_host.start_with_alice(saved=None)
    ldm_host.generate("photo <hyperlora:alice:0.7>", sample=False)
    unet = ldm_host.shared.sd_model.forge_objects.unet
    from ldm_patched.modules import lora

    sample = next(iter(unet.patches.values()))[0]
    if ldm_host.name == "reforge":
        assert isinstance(sample[1], lora.LoRAAdapter) and len(sample) == 5
    else:
        assert sample[1][0] == "lora" and len(sample) == 3
    from hyperlora_ext.lora import group_by_layer

    assert len(unet.patches) == len(group_by_layer(ext.service.loras.lora(ext.service.identities.get("alice")).tensors))


def test_restore_between_clones_is_the_hosts_own(ldm_host):
    """The weights carry whichever patcher sampled last: reForge tells them apart by ``patches_uuid`` (shared
    backups), Classic by the patcher object (``unload_model_clones``). Tag, file, plain: each pass equals a
    fresh model in that state."""
    ldm_host.start_with_alice()
    sd_model = ldm_host.shared.sd_model
    state = sd_model.forge_objects_original.unet.model.state_dict
    plain = {k: v.clone() for k, v in state().items()}
    ldm_host.process_images("photo <hyperlora:alice:1>")
    tag = {k: v.clone() for k, v in state().items()}
    ldm_host.process_images("photo <lora:alice_file:1>")
    assert all(torch.equal(tag[k], v) for k, v in state().items())
    ldm_host.process_images("photo")
    assert all(torch.equal(plain[k], v) for k, v in state().items())
    ldm_host.process_images("photo <hyperlora:alice:1>")
    assert all(torch.equal(tag[k], v) for k, v in state().items())


def test_a_saved_lora_reaches_the_lora_extension_with_or_without_update_by_names(ldm_host):
    """reForge has ``update_available_networks_by_names``; Classic only ``list_available_networks``."""
    assert hasattr(ldm_host.networks, "update_available_networks_by_names") is (ldm_host.name == "reforge")
    ext = ldm_host.start_with_alice(saved=None)
    assert "Saved" in ext.panel.save_lora("alice", "mine", 0.0, False)
    entry = ldm_host.networks.available_networks["mine"]
    assert entry.filename == str(ldm_host.lora_dir / "mine.safetensors") and entry.sd_version.name == "SDXL"
