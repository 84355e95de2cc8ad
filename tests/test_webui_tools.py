"""WebUI side of the identity tools: likeness infotext, photo check and mixes through the
service, panel and API, and the X/Y/Z axes' prompt rewriting. Real tiny models (conftest); the
``p`` objects and the xyz_grid module are plain stand-ins for the host's."""

from __future__ import annotations

import base64
import io
import logging
import types

import pytest
from face_pack import face_image
from fastapi import FastAPI
from fastapi.testclient import TestClient
from host_shapes import Params, Processing
from PIL import Image

from hyperlora_ext.app.activation import resolve_params
from hyperlora_ext.app.api import PREFIX, make_router
from hyperlora_ext.app.likeness_infotext import LIKENESS_KEY, annotate
from hyperlora_ext.app.panel import HostHooks, Panel
from hyperlora_ext.app.service import HyperLoRAService, ServiceConfig
from hyperlora_ext.app.settings import service_config
from hyperlora_ext.app.xyz_axes import (
    BASE_AXIS,
    IDENTITY_AXIS,
    LABELS,
    WEIGHT_AXIS,
    register,
    set_base,
    set_identity,
    set_weight,
)
from hyperlora_ext.photos.likeness import format_likeness, likeness, parse_likeness

ALICE = [face_image(pattern=80, seed=s) for s in (1, 2, 3)]
BOB = [face_image(pattern=-80, seed=s) for s in (4, 5)]
NO_FACE = Image.new("RGB", (200, 200), (20, 40, 160))


def b64(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def config(models_dir, folder, **kw) -> ServiceConfig:
    return ServiceConfig(models_dir=models_dir, identities_dir=folder, device="cpu", dtype="fp32",
                         allow_download=False, **kw)


@pytest.fixture
def service(models_dir, tmp_path):
    cfg = config(models_dir, tmp_path / "identities")
    return HyperLoRAService(lambda: cfg)


@pytest.fixture
def people(service):
    alice = service.create_identity(ALICE, "alice", "tiny_id")
    bob = service.create_identity(BOB, "bob", "tiny_id")
    return alice.identity, bob.identity


def tagged(service, *names) -> Processing:
    params = [Params(n, "1") for n in names]
    p = Processing(extra_network_data={"hyperlora": params})
    assert resolve_params(service, p, params, is_sdxl=True).weights
    return p


# ---- likeness infotext ------------------------------------------------------------------------
def test_likeness_per_image_equals_the_core_score(service, people, model):
    alice, bob = people
    p = tagged(service, "alice", "bob")
    annotate(service, p, ALICE[0])
    first = p.extra_generation_params[LIKENESS_KEY]
    direct = likeness(model.pipeline.face_analyzer(), ALICE[0], [alice, bob])
    assert first == format_likeness(direct) and list(parse_likeness(first)) == ["alice", "bob"]
    scores = parse_likeness(first)
    assert scores["alice"] > 0.8 > scores["bob"]
    annotate(service, p, BOB[0])  # the next image of the batch gets its own value
    scores = parse_likeness(p.extra_generation_params[LIKENESS_KEY])
    assert scores["bob"] > 0.8 > scores["alice"]
    annotate(service, p, NO_FACE)
    assert p.extra_generation_params[LIKENESS_KEY] == "alice no face, bob no face"
    assert not p.comments


def test_likeness_only_for_applied_identities_with_an_embedding(service, people):
    annotate(service, p := Processing(), ALICE[0])
    assert LIKENESS_KEY not in p.extra_generation_params  # no tag applied
    slider = service.mix("alice - bob", "ab")
    assert slider.is_slider and slider.embedding is None
    p = tagged(service, "ab")
    annotate(service, p, ALICE[0])
    assert LIKENESS_KEY not in p.extra_generation_params
    p = tagged(service, "ab", "alice")
    annotate(service, p, ALICE[0])
    assert list(parse_likeness(p.extra_generation_params[LIKENESS_KEY])) == ["alice"]
    next_batch = Processing()
    next_batch.__dict__.update(p.__dict__)
    resolve_params(service, next_batch, [], is_sdxl=True)  # a new batch without tags forgets them
    annotate(service, next_batch, ALICE[0])
    assert LIKENESS_KEY not in next_batch.extra_generation_params


def test_likeness_setting_off_and_errors_never_raise(models_dir, service, people, caplog):
    off = HyperLoRAService(lambda: config(models_dir, service.config.identity_folder, likeness_infotext=False))
    p = tagged(off, "alice")
    annotate(off, p, ALICE[0])
    assert LIKENESS_KEY not in p.extra_generation_params
    assert service_config(types.SimpleNamespace(hyperlora_likeness_infotext=False), None, models_dir) \
        .likeness_infotext is False
    assert service_config(None, None, models_dir).likeness_infotext is True
    p = tagged(service, "alice")
    with caplog.at_level(logging.ERROR):
        annotate(service, p, b"not an image")
    assert LIKENESS_KEY not in p.extra_generation_params
    assert "likeness not measured" in list(p.comments)[-1]
    assert "likeness not measured" in p.extra_generation_params["HyperLoRA warnings"]


# ---- photo check, mixes: service, panel, API -----------------------------------------------------
def test_create_checked_drops_the_stranger(service):
    pred, check = service.create_checked([*ALICE[:2], BOB[0]], "alice", "tiny_id",
                                         image_names=["a1", "a2", "who"], drop_flagged=True)
    assert check.flagged == ("who",) and "left out" in pred.skipped["who"] and len(pred.faces) == 2
    kept = service.identity("alice")
    assert kept.hash == pred.identity.hash and len(kept.source_names) == 2


def test_panel_shows_the_photo_check_and_mixes(service, tmp_path):
    panel = Panel(service, HostHooks(lora_dir=lambda: tmp_path / "Lora", lora_saved=lambda p: None))
    files = []
    for i, img in enumerate([*ALICE[:2], BOB[0]]):
        files.append(str(tmp_path / f"p{i}.png"))
        img.save(files[-1])
    crops, status, created = panel.create(files, "alice", "tiny_id", True, False, False, lambda f, d: None)
    assert created == "alice" and len(crops) == 3
    assert [c for _, c in crops][2].startswith("p2.png: ") and crops[2][1].endswith("(flagged)")
    assert "photo check" in status and "p2.png" in status and "looks like someone else" in status
    crops, status, created = panel.create(files, "alice2", "tiny_id", True, False, False, lambda f, d: None,
                                          drop_flagged=True)
    assert len(crops) == 2 and not any("flagged" in c for _, c in crops) and "left out" in status
    panel.create(files[2:], "bob", "tiny_id", True, False, False, lambda f, d: None)
    status, name = panel.mix("0.5*alice2 + 0.5*bob", "mixed", False)
    assert name == "mixed" and "Created mix" in status and "&lt;hyperlora:mixed:0.85&gt;" in status
    status, name = panel.mix("alice2 - ghost", "s", False)
    assert name is None and "ghost" in status


@pytest.fixture
def client(service, tmp_path):
    app = FastAPI()
    app.include_router(make_router(service, HostHooks(lora_dir=lambda: tmp_path / "Lora", lora_saved=lambda p: None)))
    return TestClient(app)


def test_api_photo_check_and_mix(client, service):
    body = {"name": "alice", "images": [b64(i) for i in (*ALICE[:2], BOB[0])], "variant": "tiny_id"}
    r = client.post(f"{PREFIX}/identities", json=body)
    assert r.status_code == 200, r.text
    check = r.json()["photo_check"]
    assert check["threshold"] == 0.3 and [p["name"] for p in check["photos"]] == ["images[0]", "images[1]", "images[2]"]
    assert [p["flagged"] for p in check["photos"]] == [False, False, True] and len(r.json()["crops"]) == 3
    r = client.post(f"{PREFIX}/identities", json={**body, "overwrite": True, "drop_flagged": True})
    assert r.status_code == 200 and len(r.json()["crops"]) == 2 and "images[2]" in r.json()["skipped"]
    bob = {**body, "name": "bob", "images": body["images"][2:]}
    assert client.post(f"{PREFIX}/identities", json=bob).status_code == 200
    r = client.post(f"{PREFIX}/identities/mix", json={"name": "ab", "expression": "0.6*alice + 0.4*bob"})
    assert r.status_code == 200, r.text
    mixed = r.json()
    assert mixed["tag"] == "<hyperlora:ab:0.85>" and [p["factor"] for p in mixed["parents"]] == [0.6, 0.4]
    assert service.identity("ab").options["algebra"] == "mix"
    r = client.post(f"{PREFIX}/identities/mix", json={"name": "slide", "expression": "alice - bob"})
    assert r.status_code == 200 and service.identity("slide").is_slider
    assert client.post(f"{PREFIX}/identities/mix", json={"name": "ab", "expression": "alice + bob"}).status_code == 409
    r = client.post(f"{PREFIX}/identities/mix", json={"name": "x", "expression": "alice + ghost"})
    assert r.status_code == 400 and "ghost" in r.text
    assert client.post(f"{PREFIX}/identities/mix", json={"name": "x", "expression": "alice"}).status_code == 400


# ---- X/Y/Z axes ---------------------------------------------------------------------------------
def test_axis_prompt_rewriting():
    p = "photo <hyperlora:alice:0.7> and <hyperlora:bob:1:0.3> <lora:x:1>"
    assert set_weight(p, 0) == "photo <hyperlora:alice:0> and <hyperlora:bob:0:0.3> <lora:x:1>"
    assert set_weight("<hyperlora:alice:w=0.5:base=0.2>", 1.25) == "<hyperlora:alice:1.25:base=0.2>"
    assert set_base(p, 0.5, 0.85) == "photo <hyperlora:alice:0.7:0.5> and <hyperlora:bob:1:0.5> <lora:x:1>"
    assert set_base("<hyperlora:alice>", 0.4, 0.85) == "<hyperlora:alice:0.85:0.4>"
    assert set_identity(p, "carol", 0.85) == "photo <hyperlora:carol:0.7> and <hyperlora:bob:1:0.3> <lora:x:1>"
    assert set_identity("photo", "carol", 0.85) == "photo <hyperlora:carol:0.85>"
    assert set_identity("", "carol", 1) == "<hyperlora:carol:1>"
    assert set_weight("no tags", 1) == "no tags"


class AxisOption:
    """The shape of xyz_grid.AxisOption (both hosts)."""

    def __init__(self, label, type, apply, format_value=None, confirm=None, cost=0.0, choices=None, prepare=None):
        self.label, self.type, self.apply, self.choices = label, type, apply, choices


def test_register_appends_the_axes_once():
    module = types.SimpleNamespace(AxisOption=AxisOption, axis_options=[AxisOption("Nothing", str, None)])
    other = types.SimpleNamespace(script_class=type("S", (), {"__module__": "other.py"}), module=object())
    data = [other, types.SimpleNamespace(script_class=type("X", (), {"__module__": "xyz_grid.py"}), module=module)]
    assert register(data, lambda: ["alice", "bob"], lambda: 0.85)
    assert register(data, lambda: ["alice", "bob"], lambda: 0.85)  # a script reload replaces them
    assert [o.label for o in module.axis_options] == ["Nothing", *LABELS]
    axes = {o.label: o for o in module.axis_options}
    assert axes[IDENTITY_AXIS].choices() == ["alice", "bob"] and axes[WEIGHT_AXIS].type is float
    p = types.SimpleNamespace(prompt="x <hyperlora:alice:1>", hr_prompt="")
    axes[WEIGHT_AXIS].apply(p, 0.5, [0.5])
    axes[BASE_AXIS].apply(p, 0.2, [0.2])
    axes[IDENTITY_AXIS].apply(p, "bob", ["bob"])
    assert p.prompt == "x <hyperlora:bob:0.5:0.2>" and p.hr_prompt == ""
    p = types.SimpleNamespace(prompt="x", hr_prompt="hires <hyperlora:alice>")
    axes[WEIGHT_AXIS].apply(p, 2, [2])
    assert p.prompt == "x" and p.hr_prompt == "hires <hyperlora:alice:2>"
    assert not register([other], lambda: [], lambda: 1.0)
