"""The new-Forge adapter (``webui/forge.py``) on the fake Forge 2 (``tests/hosts/forge``): what is particular to
``backend.patcher.lora``. The behaviour it shares with the ``ldm_patched`` adapter is in
``test_patcher_host.py``."""

import inspect

import torch


def _ours(unet):
    return {k: v for k, v in unet.lora_patches.items() if str(k[0]).startswith("hyperlora:")}


def test_our_patch_set_is_named_after_the_identity_version_and_weight(forge):
    ext = forge.start_with_alice(saved=None)
    forge.generate("photo <hyperlora:alice:0.7>", sample=False)
    [identifier] = _ours(forge.shared.sd_model.forge_objects.unet)
    key = ext.service.loras.lora(ext.service.identities.get("alice")).key
    assert identifier == (f"hyperlora:{key}", 0.7, 1.0, False)  # (filename, strength, model strength, online)


def test_a_comfyui_style_patcher_as_in_later_forge_neo_works_too(forge, monkeypatch):
    """Later Forge Neo versions rewrote the patcher ComfyUI-style: ``load_lora`` returns only the patches and
    ``add_patches(patches, strength_patch, strength_model)`` takes no ``filename`` (read through the code index,
    not run). The adapter takes both forms by capability."""
    from backend.patcher import base, lora

    real_load, real_add = lora.load_lora, base.ModelPatcher.add_patches

    def load_lora(sd, keys):  # the patches only
        return real_load(sd, keys)[0]

    def add_patches(self, patches, strength_patch=1.0, strength_model=1.0):  # no identifier
        return real_add(self, filename=f"comfy-{len(self.lora_patches)}", patches=patches,
                        strength_patch=strength_patch, strength_model=strength_model)

    monkeypatch.setattr(lora, "load_lora", load_lora)
    monkeypatch.setattr(base.ModelPatcher, "add_patches", add_patches)
    ext = forge.start_with_alice(saved=None)
    import hyperlora_ext.webui.forge as adapter
    from hyperlora_ext.lora import group_by_layer

    monkeypatch.setattr(adapter, "load_lora", load_lora)  # bound at import, as the real host's would be
    assert "filename" not in inspect.signature(forge.shared.sd_model.forge_objects.unet.add_patches).parameters
    original = {k: v.clone() for k, v in forge.shared.sd_model.forge_objects.unet.model.state_dict().items()}
    p = forge.generate("photo <hyperlora:alice:0.7>")
    unet = forge.shared.sd_model.forge_objects.unet
    [(identifier, patches)] = unet.lora_patches.items()
    layers = group_by_layer(ext.service.loras.lora(ext.service.identities.get("alice")).tensors)
    assert identifier[:2] == ("comfy-0", 0.7) and len(patches) == len(layers)
    assert "HyperLoRA" in p.extra_generation_params and "HyperLoRA warnings" not in p.extra_generation_params
    merged = unet.model.state_dict()
    assert any(not torch.equal(original[k], merged[k]) for k in original)
