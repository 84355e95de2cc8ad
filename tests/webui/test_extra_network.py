"""``webui/extra_network.py``: the ``hyperlora`` ExtraNetwork and the ``load_networks`` wrapper both
adapters share, on both fake hosts."""

from people import ALICE

from hyperlora_ext.app.core.tags import TAG


def test_install_registers_and_wraps_once_even_after_a_script_reload(webui):
    ext = webui.start()
    networks, patches = webui.networks, webui.modules.patches
    original = patches.original("hyperlora_ext.webui.extra_network", networks, "load_networks")
    wrapped = networks.load_networks
    extra = ext.host.install()  # scripts reloaded without an unload: the old wrapper is replaced, not stacked
    assert networks.load_networks is not wrapped
    assert patches.original("hyperlora_ext.webui.extra_network", networks, "load_networks") is original
    assert webui.extra_networks.extra_network_registry[TAG] is extra and extra.name == TAG
    ext.host.uninstall()
    assert networks.load_networks is original


def test_the_extra_network_runs_for_every_pass_and_deactivate_is_quiet(webui):
    ext = webui.start()
    ext.service.create_identity(ALICE, "alice", "tiny_id")
    p = webui.generate("photo <hyperlora:alice:0.5>", sample=False)
    weights = [w for w, _ in ext.host.active] if webui.is_forge else [n.unet_multiplier for n in ext.host.active]
    assert weights == [0.5]
    webui.extra_networks.deactivate(p, p.extra_network_data)
    webui.generate("photo", sample=False)  # named by no prompt: called with [] and removes ours
    assert ext.host.active == []
    assert p.prompts == ["fcsks fxhks fhyks, photo "]  # trigger words added, the tag removed by the host


def test_errors_in_our_extra_network_never_reach_the_host(webui, monkeypatch):
    ext = webui.start()

    def broken(p, params_list):
        raise OSError("disk gone")

    monkeypatch.setattr(ext.host, "activate", broken)
    p = webui.generate("photo <hyperlora:alice:1>", sample=False)
    assert webui.reported() == []  # nothing for the host to catch and print
    assert "HyperLoRA: not applied (OSError: disk gone)" in p.comments


def test_saved_loras_are_listed_by_the_lora_extension(webui):
    ext = webui.start()
    ext.service.create_identity(ALICE, "alice", "tiny_id")
    assert "Saved" in ext.panel.save_lora("alice", "mine", 0.0, False)
    entry = webui.networks.available_networks["mine"]
    assert entry.filename == str(webui.lora_dir / "mine.safetensors")
    assert entry.alias == "mine" and entry.sd_version.name == "SDXL"
