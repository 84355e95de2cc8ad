"""The extension's settings become a ``ServiceConfig``."""

from hyperlora_ext.app.panel.settings import OPTIONS, open_accordion, service_config


def test_settings_to_config(tmp_path, monkeypatch):
    class Opts:
        hyperlora_models_dir = ""
        hyperlora_offload = "Keep on GPU"
        hyperlora_providers = " CPUExecutionProvider , "
        hyperlora_det_size = 512

    class CmdOpts:
        hyperlora_models_dir = str(tmp_path / "cli")

    monkeypatch.delenv("HYPERLORA_MODELS_DIR", raising=False)
    cfg = service_config(Opts(), CmdOpts(), tmp_path / "webui_models", "cpu")
    assert cfg.models_dir == tmp_path / "cli" and cfg.offload == "resident" and cfg.det_size == 512
    assert cfg.providers == ("CPUExecutionProvider",) and cfg.default_weight == 0.85 and cfg.auto_trigger_words
    assert cfg.identity_folder == tmp_path / "cli" / "hyper_lora" / "identities"
    Opts.hyperlora_models_dir = str(tmp_path / "setting")
    assert service_config(Opts(), CmdOpts(), tmp_path).models_dir == tmp_path / "setting"
    assert service_config(None, None, tmp_path / "m").models_dir == tmp_path / "m"
    assert len({o.key for o in OPTIONS}) == len(OPTIONS) and all(o.key.startswith("hyperlora_") for o in OPTIONS)


def test_open_accordion_setting():
    """Settings -> HyperLoRA -> open the panel on page load: a checkbox, off by default, applied when the page
    is built (so the host labels it "requires Reload UI")."""
    option = next(o for o in OPTIONS if o.key == "hyperlora_open_accordion")
    assert option.default is False and option.kind == "checkbox" and option.reload_ui
    assert [o.key for o in OPTIONS if o.reload_ui] == ["hyperlora_open_accordion"]

    class Opts:
        pass

    assert open_accordion(None) is False  # no options object (outside a WebUI)
    assert open_accordion(Opts()) is False  # config.json without the key: the default
    Opts.hyperlora_open_accordion = True
    assert open_accordion(Opts()) is True
    Opts.hyperlora_open_accordion = False
    assert open_accordion(Opts()) is False
