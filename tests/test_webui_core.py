"""Host-independent WebUI layer: tags, identity store, service, activation, panel handlers.

Real tiny models (conftest) and real files; the ``p`` objects are plain stand-ins for the
WebUI's processing object (the WebUI itself is covered by tests/e2e).
"""

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from face_pack import face_image
from host_shapes import Params, Processing
from PIL import Image
from safetensors import safe_open

from hyperlora_ext import HyperLoRAError
from hyperlora_ext.app.activation import (
    HIRES_INFOTEXT_KEY,
    add_tag_to_prompts,
    resolve_params,
    run_activation,
    script_tag,
)
from hyperlora_ext.app.panel import HostHooks, Panel, insert_tag, upload_path
from hyperlora_ext.app.service import HyperLoRAService, ServiceConfig
from hyperlora_ext.app.settings import OPTIONS, service_config
from hyperlora_ext.app.tags import (
    Applied,
    TagRequest,
    format_infotext,
    format_tag,
    has_trigger_words,
    parse_infotext,
    parse_tag,
    with_trigger_words,
)
from hyperlora_ext.identities.store import IdentityStore

ALICE = [face_image(feature=(170, 110, 90), seed=s) for s in (1, 2)]
BOB = face_image(feature=(250, 215, 190), seed=4)
NO_FACE = Image.new("RGB", (200, 200), (20, 40, 160))


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# ---- tags ------------------------------------------------------------------------------------
def test_parse_tag_forms():
    assert parse_tag(["alice"], {}, 0.85) == TagRequest("alice", 0.85, 0.0)
    assert parse_tag(["alice", "0.7"]) == TagRequest("alice", 0.7, 0.0)
    assert parse_tag(["alice", "0.7", "0.4"]) == TagRequest("alice", 0.7, 0.4)
    assert parse_tag(["alice", "0.7"], {"base": "0.3"}) == TagRequest("alice", 0.7, 0.3)
    assert parse_tag([" alice smith "]).name == "alice smith"


@pytest.mark.parametrize("positional,named,fragment", [
    ([], {}, "give an identity name"),
    (["alice", "heavy"], {}, "weight 'heavy' is not a number"),
    (["alice", "1", "x"], {}, "base weight 'x'"),
    (["alice", "1", "0", "9"], {}, "too many values"),
    (["alice", "nan"], {}, "out of range"),
    (["alice", "1"], {"dyn": "4"}, "unknown option"),
])
def test_parse_tag_errors_quote_the_tag(positional, named, fragment):
    with pytest.raises(ValueError, match=fragment) as err:
        parse_tag(positional, named)
    assert str(err.value).startswith("<hyperlora")


def test_format_tag_and_trigger_words():
    assert format_tag("alice", 0.85) == "<hyperlora:alice:0.85>"
    assert format_tag("alice", 1.0, 0.4) == "<hyperlora:alice:1:0.4>"
    assert with_trigger_words("photo of alice") == "fcsks fxhks fhyks, photo of alice"
    assert with_trigger_words("") == "fcsks fxhks fhyks"
    kept = "a FCSKS fxhks fhyks portrait"
    assert with_trigger_words(kept) == kept and has_trigger_words(kept)
    assert not has_trigger_words("fcsksx fxhks fhyks")  # whole words only


def test_infotext_round_trip():
    applied = [Applied("alice", "3f2a9c1b2d4e", 0.85, 0.0, "fidelity"),
               Applied("bob x", "aabbccddeeff", 1, 0.4, "edit")]
    text = format_infotext(applied)
    assert text == "alice (3f2a9c1b2d4e): 0.85, fidelity; bob x (aabbccddeeff): 1, base 0.4, edit"
    assert parse_infotext(text) == applied
    assert parse_infotext('"' + text + '"') == applied
    assert parse_infotext("garbage") == []


# ---- store ------------------------------------------------------------------------------------
@pytest.fixture
def service(models_dir, tmp_path):
    cfg = ServiceConfig(models_dir=models_dir, identities_dir=tmp_path / "identities", device="cpu",
                        dtype="fp32", allow_download=False)
    return HyperLoRAService(lambda: cfg)


@pytest.fixture
def alice(service):
    return service.create_identity(ALICE, "alice", "tiny_id", image_names=["a1.png", "a2.png"]).identity


def test_create_identity_stores_file_and_preview(service, alice):
    store = service.store
    assert store.names() == ["alice"]
    assert store.path("alice").is_file() and store.preview_path("alice").is_file()
    loaded = service.identity("ALICE")  # case-insensitive lookup
    assert loaded.name == "alice" and loaded.hash == alice.hash
    assert torch.equal(loaded.tokens, alice.tokens) and loaded.source_names == ("a1.png", "a2.png")


def test_create_identity_refuses_taken_names_and_bad_input(service, alice):
    before = service.store.path("alice").read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        service.create_identity([BOB], "Alice", "tiny_id")
    assert service.store.path("alice").read_bytes() == before
    with pytest.raises(ValueError, match="not usable as a name"):
        service.create_identity([BOB], "../..", "tiny_id")
    with pytest.raises(ValueError, match="no images"):
        service.create_identity([], "carol", "tiny_id")
    replaced = service.create_identity([BOB], "alice", "tiny_id", overwrite=True).identity
    assert service.identity("alice").hash == replaced.hash != alice.hash


def test_names_cannot_escape_the_folder(tmp_path):
    store = IdentityStore(tmp_path / "ids")
    for name in ("../evil", "a/b", "..", "C:\\x", "con"):
        try:
            path = store.path(name)
        except ValueError:
            continue
        assert path.parent == (tmp_path / "ids").resolve()


def test_rename_and_delete(service, alice):
    assert service.rename("alice", "Alice Smith") == "Alice Smith"
    assert service.store.names() == ["Alice Smith"]
    assert service.store.preview_path("Alice Smith").is_file()
    assert service.identity("alice smith").hash == alice.hash
    service.create_identity([BOB], "bob", "tiny_id")
    with pytest.raises(FileExistsError):
        service.rename("bob", "alice smith")
    with pytest.raises(KeyError):
        service.rename("nobody", "x")
    assert service.delete("bob") == "bob"
    assert service.store.names() == ["Alice Smith"] and not service.store.preview_path("bob").exists()
    with pytest.raises(KeyError):
        service.delete("bob")


def test_damaged_identity_file_is_reported_not_hidden(service, alice):
    service.store.path("broken").write_bytes(b"not a safetensors file")
    good, bad = service.store.load_all()
    assert list(good) == ["alice"] and "broken" in bad and "broken.safetensors" in bad["broken"]
    res = service.resolve([TagRequest("broken", 1.0)])
    assert not res.weights and "cannot read identity file" in res.warnings[0]


# ---- LoRA weights ----------------------------------------------------------------------------
def test_lora_weights_equal_the_saved_file(service, alice, tmp_path):
    weights = service.lora(alice)
    assert weights.key == f"hyperlora_alice_{alice.hash}"
    assert service.lora(alice) is weights  # cached
    path = service.save_lora("alice", tmp_path / "Lora")
    assert path == (tmp_path / "Lora" / "alice.safetensors").resolve()
    assert (tmp_path / "Lora" / "alice.preview.png").is_file()
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        assert set(f.keys()) == set(weights.tensors)
        for k in f.keys():
            assert torch.equal(f.get_tensor(k), weights.tensors[k]), k  # bit-identical to the in-memory net
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0"
    assert meta["hyperlora.identity_hash"] == alice.hash and meta["hyperlora.identity"] == "alice"
    with pytest.raises(FileExistsError):
        service.save_lora("alice", tmp_path / "Lora")
    assert service.save_lora("alice", tmp_path / "Lora", overwrite=True) == path
    escaped = service.save_lora("alice", tmp_path / "Lora", file_name="../../x")
    assert escaped.parent == (tmp_path / "Lora").resolve()  # sanitised, never outside the folder
    with pytest.raises(ValueError):
        service.save_lora("alice", tmp_path / "Lora", file_name="..")


def test_base_lora_is_baked_in_and_named(models_dir, tmp_path):
    cfg = ServiceConfig(models_dir=models_dir, identities_dir=tmp_path / "ids", device="cpu", dtype="fp32")
    svc = HyperLoRAService(lambda: cfg)
    ident = svc.create_identity(ALICE, "alice", "tiny_base").identity
    assert ident.has_base
    plain, with_base = svc.lora(ident), svc.lora(ident, 0.4)
    assert with_base.key.endswith("_b0.4") and with_base.key != plain.key
    down = next(k for k in plain.tensors if k.endswith("lora_down.weight"))
    assert with_base.tensors[down].shape[0] > plain.tensors[down].shape[0]  # ranks stacked
    res = svc.resolve([TagRequest("alice", 0.8, 0.4)])
    assert res.applied == [Applied("alice", ident.hash, 0.8, 0.4, "tiny_base")]


def test_resolve_turns_problems_into_warnings(service, alice):
    res = service.resolve([TagRequest("nobody", 1.0), TagRequest("alice", 0.5, 0.4), TagRequest("alice", 0.9)])
    assert "no identity named 'nobody'" in res.warnings[0] and "known: alice" in res.warnings[0]
    assert "has no Base-LoRA" in res.warnings[1]
    assert "tagged 2 times; applied once at the sum of the weights, 0.5 + 0.9 = 1.4" in res.warnings[2]
    assert [(r.weight, w.base) for r, w in res.weights] == [(1.4, 0.0)]


def test_identity_from_other_weights_is_refused(service, alice, tmp_path, models_dir):
    alice.model_fingerprint = "0" * 16
    service.store.save(alice, "stranger")
    res = service.resolve([TagRequest("stranger", 1.0)])
    assert not res.weights and "re-create the identity" in res.warnings[0]


def test_missing_models_without_download_list_the_files(tmp_path):
    cfg = ServiceConfig(models_dir=tmp_path / "empty", device="cpu", allow_download=False)
    svc = HyperLoRAService(lambda: cfg)
    assert svc.variants() == ["sdxl_hyper_id_lora_v1_fidelity"]
    with pytest.raises(HyperLoRAError, match="missing"):
        svc.create_identity(ALICE, "alice")
    assert svc.store.names() == []


# ---- activation ----------------------------------------------------------------------------
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


# ---- panel -----------------------------------------------------------------------------------
def test_insert_tag():
    assert insert_tag("", "alice", 0.85) == "<hyperlora:alice:0.85>"
    assert insert_tag("photo", "alice", 0.85) == "photo <hyperlora:alice:0.85>"
    assert insert_tag("a <hyperlora:Alice:0.5> b", "alice", 1, 0.4) == "a <hyperlora:alice:1:0.4> b"
    assert insert_tag("<hyperlora:bob:1>", "alice", 1) == "<hyperlora:bob:1> <hyperlora:alice:1>"


class Gradio3Upload:
    """What gradio 3 hands a File component's handler: a tempfile wrapper with name/orig_name."""

    def __init__(self, path, orig_name):
        self.name, self.orig_name = str(path), orig_name


def test_panel_flow(service, tmp_path):
    saved = []
    hooks = HostHooks(lora_dir=lambda: tmp_path / "Lora", lora_saved=saved.append)
    panel = Panel(service, hooks)
    files = []
    for i, img in enumerate([*ALICE, NO_FACE]):
        path = tmp_path / f"up{i}.png"
        img.save(path)
        files.append(path)
    assert upload_path(str(files[0])) == (str(files[0]), "up0.png")
    uploads = [Gradio3Upload(files[0], "me.png"), str(files[1]), Gradio3Upload(files[2], "sky.png")]
    crops, status, created = panel.create(uploads, "alice", "tiny_id", True, False, False, lambda f, d: None)
    assert created == "alice" and len(crops) == 2
    assert "sky.png: no face found" in status and "&lt;hyperlora:alice:0.85&gt;" in status
    crops, status, created = panel.create([], "x", None, True, False, False, lambda f, d: None)
    assert created is None and "Upload" in status
    crops, status, created = panel.create([str(files[2])], "sky", None, True, False, False, lambda f, d: None)
    assert created is None and "No usable face" in status and panel.names() == ["alice"]
    crops, status = panel.show("alice")
    assert len(crops) == 2 and "tiny_id" in status
    status = panel.save_lora("alice", "", 0.0, False)
    assert "Saved" in status and saved == [(tmp_path / "Lora" / "alice.safetensors").resolve()]
    assert "already exists" in panel.save_lora("alice", "", 0.0, False)
    status, now = panel.rename("alice", "carol")
    assert now == "carol" and panel.names() == ["carol"]
    status, now = panel.delete("carol", False)
    assert now == "carol" and "confirm" in status
    status, now = panel.delete("carol", True)
    assert now is None and panel.names() == []



def test_panel_reports_unexpected_errors(service, tmp_path, caplog):
    def refresh_fails(path):  # the host's Lora-list refresh
        raise RuntimeError("Lora list refresh failed")

    def cancelled(fraction, desc):  # the host's progress bar, e.g. on cancel
        raise RuntimeError("cancelled by the user")

    panel = Panel(service, HostHooks(lora_dir=lambda: tmp_path / "Lora", lora_saved=refresh_fails))
    upload = tmp_path / "a.png"
    ALICE[0].save(upload)
    with caplog.at_level("ERROR", logger="hyperlora_ext.app.panel"):
        crops, status, created = panel.create([str(upload)], "alice", "tiny_id", True, False, False, cancelled)
    assert created is None and crops == []
    assert "Creating the identity failed: RuntimeError: cancelled by the user" in status and "#d33" in status
    assert caplog.records[-1].exc_info is not None  # traceback in the console
    assert panel.create([str(upload)], "alice", "tiny_id", True, False, False, lambda f, d: None)[2] == "alice"
    status = panel.save_lora("alice", "", 0.0, False)
    assert "Saving the LoRA failed: RuntimeError: Lora list refresh failed" in status


# ---- settings ----------------------------------------------------------------------------------
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


def test_paths_are_paths(service):
    assert isinstance(service.config.identity_folder, Path)
