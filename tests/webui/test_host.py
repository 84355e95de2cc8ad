"""``webui/host.py``: what the ``Extension`` registers in the host (settings, the extra network, the
Extra Networks page, X/Y/Z axes, routes, infotext pasting, clean-up), on every fake host."""

import logging
import sys

import torch
from fastapi.testclient import TestClient
from people import ALICE

from hyperlora_ext.app.panel.settings import OPTIONS, SECTION
from hyperlora_ext.app.panel.xyz_axes import LABELS

ADAPTERS = {"a1111": "A1111Host", "forge": "ForgeHost", "reforge": "LdmPatchedHost", "classic": "LdmPatchedHost"}
FAMILIES = {"a1111": "A1111", "forge": "new Forge (backend.patcher.lora)",
            "reforge": "Forge on ldm_patched (ldm_patched.modules.lora)",
            "classic": "Forge on ldm_patched (ldm_patched.modules.lora)"}


def test_extension_registers_its_callbacks(webui):
    ext = webui.extension()
    assert ext.forge is webui.is_forge and type(ext.host).__name__ == ADAPTERS[webui.name]
    callbacks = {category: [c.callback for c in webui.script_callbacks.callback_map[f"callbacks_{category}"]]
                 for category in ("ui_settings", "before_ui", "app_started", "infotext_pasted", "script_unloaded")}
    assert callbacks == {"ui_settings": [ext.ui_settings], "before_ui": [callbacks["before_ui"][0], ext.before_ui],
                         "app_started": [ext.app_started], "infotext_pasted": [ext.infotext_pasted],
                         "script_unloaded": [ext.unload]}


def test_settings_are_host_options_and_reach_the_service(webui):
    import gradio as gr

    ext = webui.start()
    opts = webui.shared.opts
    for option in OPTIONS:
        info = opts.data_labels[option.key]
        assert (info.default, info.label, info.section) == (option.default, option.label, SECTION)
        assert info.component is {"textbox": gr.Textbox, "slider": gr.Slider, "radio": gr.Radio,
                                  "checkbox": None}[option.kind]
        assert (info.component_args or {}) == option.args
        assert (option.info in info.comment_after) if option.info else info.comment_after == ""
    assert ext.service.config.default_weight == 0.85
    opts.hyperlora_default_weight = 0.6
    opts.hyperlora_auto_trigger_words = False
    cfg = ext.service.config
    assert (cfg.default_weight, cfg.auto_trigger_words) == (0.6, False)
    assert cfg.models_dir == webui.models and cfg.identity_folder == webui.models / "hyper_lora" / "identities"
    assert cfg.device == "cpu"
    opts.hyperlora_models_dir = str(webui.models / "elsewhere")
    assert ext.service.config.models_dir == webui.models / "elsewhere"


def test_before_ui_registers_the_extra_network_page_and_axes(webui):
    ext = webui.start()
    registry = webui.extra_networks.extra_network_registry
    assert list(registry) == ["hyperlora", "lora"]  # before_ui callbacks run last-registered first
    assert registry["hyperlora"] is ext.extra_network and ext.extra_network.host is ext.host
    [page] = webui.ui_extra_networks.extra_pages
    assert page.name == "hyperlora" and page.panel is ext.panel
    assert str(ext.service.config.identity_folder) in webui.ui_extra_networks.allowed_dirs
    xyz, ours = webui.scripts.scripts_data  # the X/Y/Z plot's script, then ours
    assert ours.module.extension is ext
    labels = [o.label for o in xyz.module.axis_options]
    assert labels == ["Nothing", "Prompt S/R", *LABELS]
    webui.script_callbacks.before_ui_callback()  # the UI is built again (Reload UI): no second copies
    assert [o.label for o in xyz.module.axis_options] == labels
    identity_axis = xyz.module.axis_options[2]
    ext.service.create_identity(ALICE, "alice", "tiny_id")
    assert identity_axis.choices() == ["alice"]


def test_a_broken_xyz_script_leaves_the_axes_out_with_a_log(webui, caplog):
    ext = webui.extension()
    webui.scripts.scripts_data[0] = None  # not a ScriptClassData any more
    with caplog.at_level(logging.ERROR):
        ext.add_xyz_axes()
    assert "adding the X/Y/Z plot axes failed" in caplog.text


def test_names_route_always_and_the_api_only_with_api(webui):
    ext = webui.start()
    ext.service.create_identity(ALICE, "alice", "tiny_id")
    client = TestClient(webui.app)
    assert client.get("/hyperlora/ui/names").json() == {"names": ["alice"], "weight": 0.85}
    assert client.get("/hyperlora/v1/identities").status_code == 404
    webui.start(api=True)
    client = TestClient(webui.app)
    listed = client.get("/hyperlora/v1/identities")
    assert listed.status_code == 200 and "alice" in listed.text


def test_the_api_requires_the_hosts_api_auth(webui):
    webui.shared.cmd_opts.api_auth = "me:secret"
    webui.start(api=True)
    client = TestClient(webui.app)
    assert client.get("/hyperlora/v1/identities").status_code == 401
    assert client.get("/hyperlora/v1/identities", auth=("me", "secret")).status_code == 200


def test_pasted_infotext_points_a_renamed_identity_at_its_new_name(webui):
    ext = webui.start()
    ext.service.create_identity(ALICE, "alice", "tiny_id")
    p = webui.generate("photo <hyperlora:alice:0.7>", sample=False)
    params = {"Prompt": "photo <hyperlora:alice:0.7>", "HyperLoRA": p.extra_generation_params["HyperLoRA"]}
    ext.service.rename("alice", "carol")
    webui.script_callbacks.infotext_pasted_callback("photo ...", params)
    assert params["Prompt"] == "photo <hyperlora:carol:0.7>"


def test_gpu_lock_holds_the_queue_lock_and_the_model_lock_where_there_is_one(webui):
    ext = webui.extension()
    from modules.call_queue import queue_lock

    model_lock = getattr(webui.sd_models.model_data, "lock", None)
    assert (model_lock is None) is (webui.name == "forge")  # A1111 and the ldm_patched hosts have one
    with ext.hooks.gpu_lock():
        assert queue_lock.locked() and (model_lock is None or model_lock.locked())
    assert not queue_lock.locked()


def test_unloading_the_script_takes_our_wrapper_off_and_our_networks_out(webui):
    ext = webui.start()
    ext.service.create_identity(ALICE, "alice", "tiny_id")
    networks = webui.networks
    original = webui.modules.patches.original("hyperlora_ext.webui.extra_network", networks, "load_networks")
    assert original is not None and networks.load_networks is not original
    webui.generate("photo <hyperlora:alice:1>", sample=False)
    webui.script_callbacks.script_unloaded_callback()
    assert networks.load_networks is original and ext.host.active == []
    if webui.is_forge:
        sd_model = webui.shared.sd_model
        assert sd_model.forge_objects_after_applying_lora.unet is sd_model.forge_objects_original.unet
    else:
        assert networks.loaded_networks == []


def test_without_the_lora_extension_tags_are_off_and_say_so(webui, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "networks", None)  # the built-in Lora extension is disabled
    with caplog.at_level(logging.ERROR):
        ext = webui.start()
    assert ext.host is None
    assert f"tags are off: found {FAMILIES[webui.name]}, but its built-in Lora extension" in caplog.text
    assert ext.hooks.tags_off == ext.tags_off and "is not loaded" in ext.tags_off
    assert [p.name for p in webui.ui_extra_networks.extra_pages] == ["hyperlora"]
    ext.service.create_identity(ALICE, "alice", "tiny_id")
    assert "Saved" in ext.panel.save_lora("alice", "", 0.0, False)  # no Lora extension to tell
    ext._free_memory(1 << 20)
    # A tag is not dropped silently: the generation's infotext says why it was skipped.
    p = webui.generate("photo <hyperlora:alice:1>", sample=False)
    warning = p.extra_generation_params["HyperLoRA warnings"]
    assert warning.startswith("tags are off on this WebUI (found ") and warning.endswith("; 1 tag(s) skipped")
    assert "HyperLoRA" not in p.extra_generation_params and webui.reported() == []
    assert "HyperLoRA warnings" not in webui.generate("photo", sample=False).extra_generation_params
    webui.script_callbacks.script_unloaded_callback()


def test_a_forge_without_either_lora_backend_is_named_and_tags_are_off(forge, monkeypatch, caplog):
    forge.load_model()
    monkeypatch.setitem(sys.modules, "backend.patcher.lora", None)  # a Forge whose LoRA code moved elsewhere
    with caplog.at_level(logging.ERROR):
        ext = forge.start()
    assert ext.host is None and ext.forge
    assert ext.tags_off == ("found an unknown Forge (modules_forge without backend.patcher.lora or "
                            "ldm_patched.modules.lora), which this version does not support")
    assert ext.tags_off in caplog.text


def test_the_host_family_is_found_by_capability(webui, monkeypatch, capsys):
    from hyperlora_ext.webui.host import host_family, is_forge

    assert host_family().name == FAMILIES[webui.name] and is_forge() is webui.is_forge
    webui.extension()
    assert f"{FAMILIES[webui.name]} (" in capsys.readouterr().out  # the start-up line names the family
    monkeypatch.setitem(sys.modules, "modules_forge", None)
    assert host_family().name == "A1111" and is_forge() is False


def test_the_publishing_setting_keeps_identities_as_lora_files_the_host_lists(webui, capsys):
    """Settings -> keep every identity as a LoRA file: turning it on publishes the existing identities (in the
    background), the host's Lora extension lists them at once, ``<lora:hyperlora_NAME:w>`` merges what
    ``<hyperlora:NAME:w>`` does, a rename follows, and turning it off leaves the files."""
    ext = webui.start()
    ext.service.create_identity(ALICE, "alice", "tiny_id")
    opts, networks = webui.shared.opts, webui.networks
    published = webui.lora_dir / "HyperLoRA" / "hyperlora_alice.safetensors"
    assert not published.exists()
    assert opts.set("hyperlora_publish_loras", True)  # what Apply settings does: runs the option's onchange
    ext.publisher.join(120)
    assert published.is_file() and networks.available_networks["hyperlora_alice"].filename == str(published)
    webui.process_images("photo <hyperlora:alice:0.7>")
    by_tag = webui.unet_weights()
    webui.process_images("photo <lora:hyperlora_alice:0.7>")
    by_file = webui.unet_weights()
    assert all(torch.equal(by_tag[k], by_file[k]) for k in by_tag)
    assert "hyperlora_dora" in ext.panel.rename("alice", "dora")[0]
    assert "hyperlora_alice" not in networks.available_networks and "hyperlora_dora" in networks.available_networks
    assert opts.set("hyperlora_publish_loras", False)
    assert "the files in" in capsys.readouterr().out and published.with_name("hyperlora_dora.safetensors").exists()
    ext.service.delete("dora")  # off: the file stays
    assert published.with_name("hyperlora_dora.safetensors").exists()
