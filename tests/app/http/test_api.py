"""The HTTP API router on a real FastAPI app (TestClient), backed by tiny real models."""

import base64
import io

import pytest
from face_pack import face_image
from fastapi import FastAPI
from fastapi.testclient import TestClient
from people import ALICE_PATTERNED, BOB_PATTERNED, group_photo, png_base64
from PIL import Image

import hyperlora_ext
from hyperlora_ext.app.core.host_hooks import HostHooks
from hyperlora_ext.app.core.service import HyperLoRAService, ServiceConfig
from hyperlora_ext.app.http.api import PREFIX, make_router, parse_api_auth
from hyperlora_ext.app.http.status import http_status
from hyperlora_ext.errors import (
    CheckpointError,
    DamagedIdentityError,
    DownloadError,
    HyperLoRAError,
    ImageError,
    MissingModelsError,
    NameConflictError,
    NoFaceError,
    UnknownIdentityError,
)

b64 = png_base64


ALICE = [b64(face_image(feature=(170, 110, 90), seed=s)) for s in (1, 2)]
NO_FACE = b64(Image.new("RGB", (200, 200), (20, 40, 160)))
THREE_OF_ALICE = [face_image(pattern=80, seed=s) for s in (1, 2)] + [face_image(pattern=-80, seed=4)]  # 3rd: bob


@pytest.fixture
def saved():
    return []


@pytest.fixture
def client(service, tmp_path, saved):
    hooks = HostHooks(lora_dir=lambda: tmp_path / "Lora", lora_saved=saved.append)
    app = FastAPI()
    app.include_router(make_router(service, hooks))
    return TestClient(app)


def test_identity_lifecycle(client, saved, tmp_path):
    r = client.post(f"{PREFIX}/identities", json={"name": "alice", "images": [ALICE[0], "data:image/png;base64,"
                                                                              + ALICE[1], NO_FACE],
                                                    "variant": "tiny_id"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "alice" and body["tag"] == "<hyperlora:alice:0.85>" and len(body["crops"]) == 2
    assert body["skipped"] == {"images[2]": "no face found"} and body["variant"] == "tiny_id"
    Image.open(io.BytesIO(base64.b64decode(body["crops"][0]))).verify()
    listed = client.get(f"{PREFIX}/identities").json()
    assert [i["name"] for i in listed["identities"]] == ["alice"] and listed["damaged"] == {}
    assert client.get(f"{PREFIX}/identities/alice").json()["hash"] == body["hash"]
    assert len(client.get(f"{PREFIX}/identities/alice/crops").json()["crops"]) == 2
    r = client.post(f"{PREFIX}/identities/alice/lora", json={"file_name": "alice_lora"})
    assert r.status_code == 200 and r.json()["tag"] == "<lora:alice_lora:0.85>"
    assert (tmp_path / "Lora" / "alice_lora.safetensors").is_file() and saved[0].name == "alice_lora.safetensors"
    assert client.post(f"{PREFIX}/identities/alice/lora", json={"file_name": "alice_lora"}).status_code == 409
    assert client.post(f"{PREFIX}/identities/alice/rename", json={"new_name": "carol"}).json() == {"name": "carol"}
    assert client.delete(f"{PREFIX}/identities/carol").json() == {"deleted": "carol"}
    assert client.get(f"{PREFIX}/identities").json()["identities"] == []
    assert client.get(f"{PREFIX}/models").json()["variants"] == ["tiny_base", "tiny_id"]


@pytest.mark.parametrize("payload,status,fragment", [
    ({"name": "x", "images": ["%%%"]}, 400, "images[0] is not valid base64"),
    ({"name": "x", "images": []}, 400, "images is empty"),
    ({"name": "x", "images": [NO_FACE], "variant": "tiny_id"}, 422, "No usable face"),
    ({"name": "x", "images": [base64.b64encode(b"not an image").decode()], "variant": "tiny_id"}, 422, "images[0]"),
    ({"name": "..", "images": [ALICE[0]]}, 400, "not usable as a name"),
    ({"name": "x", "images": [ALICE[0]], "bogus": 1}, 422, "bogus"),
    ({"images": [ALICE[0]]}, 422, "name"),
])
def test_bad_requests_get_4xx_with_a_message(client, payload, status, fragment):
    r = client.post(f"{PREFIX}/identities", json=payload)
    assert r.status_code == status, r.text
    assert fragment in r.text


def test_unknown_identity_and_conflicts(client):
    assert client.get(f"{PREFIX}/identities/ghost").status_code == 404
    assert client.delete(f"{PREFIX}/identities/ghost").status_code == 404
    assert client.post(f"{PREFIX}/identities/ghost/lora", json={}).status_code == 404
    ok = {"name": "alice", "images": [ALICE[0]], "variant": "tiny_id"}
    assert client.post(f"{PREFIX}/identities", json=ok).status_code == 200
    assert client.post(f"{PREFIX}/identities", json=ok).status_code == 409
    assert client.post(f"{PREFIX}/identities", json={**ok, "overwrite": True}).status_code == 200
    r = client.post(f"{PREFIX}/identities/alice/lora", json={"base_weight": 0.4})
    assert r.status_code == 400 and "no Base-LoRA" in r.text
    assert client.post(f"{PREFIX}/identities/alice/lora", json={"base_weight": 5}).status_code == 422


def test_api_auth(models_dir, tmp_path):
    assert parse_api_auth("u:p,v:a:b") == {"u": "p", "v": "a:b"} and parse_api_auth("") is None
    cfg = ServiceConfig(models_dir=models_dir, identities_dir=tmp_path / "ids", device="cpu")
    app = FastAPI()
    hooks = HostHooks(lora_dir=lambda: tmp_path, lora_saved=lambda p: None)
    app.include_router(make_router(HyperLoRAService(lambda: cfg), hooks, {"u": "secret"}))
    c = TestClient(app)
    assert c.get(f"{PREFIX}/identities").status_code == 401
    assert c.get(f"{PREFIX}/identities", auth=("u", "wrong")).status_code == 401
    assert c.get(f"{PREFIX}/identities", auth=("u", "secret")).status_code == 200


def test_unexpected_errors_are_json_500_and_logged(models_dir, tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # the Lora folder "exists" as a file: an OSError nothing expects
    cfg = ServiceConfig(models_dir=models_dir, identities_dir=tmp_path / "ids", device="cpu", dtype="fp32",
                        allow_download=False)
    hooks = HostHooks(lora_dir=lambda: blocker / "Lora", lora_saved=lambda p: None)
    app = FastAPI()
    app.include_router(make_router(HyperLoRAService(lambda: cfg), hooks))
    client = TestClient(app)  # re-raises what reaches Starlette unhandled, so a bare 500 fails here
    ok = {"name": "alice", "images": [ALICE[0]], "variant": "tiny_id"}
    assert client.post(f"{PREFIX}/identities", json=ok).status_code == 200
    with caplog.at_level("ERROR", logger="hyperlora_ext.app.http.status"):
        r = client.post(f"{PREFIX}/identities/alice/lora", json={})
    assert r.status_code == 500
    detail = r.json()["detail"]
    assert detail.startswith("HyperLoRA: saving the LoRA failed: NotADirectoryError") and "not-a-folder" in detail
    assert caplog.records and caplog.records[-1].exc_info is not None  # traceback in the server log
    assert client.post(f"{PREFIX}/identities/ghost/lora", json={}).status_code == 404  # HTTP errors unchanged


def test_api_photo_check_and_mix(client, service):
    body = {"name": "alice", "images": [b64(i) for i in THREE_OF_ALICE], "variant": "tiny_id"}
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
    assert service.identities.get("ab").options["algebra"] == "mix"
    r = client.post(f"{PREFIX}/identities/mix", json={"name": "slide", "expression": "alice - bob"})
    assert r.status_code == 200 and service.identities.get("slide").is_slider
    assert client.post(f"{PREFIX}/identities/mix", json={"name": "ab", "expression": "alice + bob"}).status_code == 409
    r = client.post(f"{PREFIX}/identities/mix", json={"name": "x", "expression": "alice + ghost"})
    assert r.status_code == 400 and "ghost" in r.text
    assert client.post(f"{PREFIX}/identities/mix", json={"name": "x", "expression": "alice"}).status_code == 400


def test_version(client):
    r = client.get(f"{PREFIX}/version")
    assert r.status_code == 200 and r.json() == {"version": hyperlora_ext.__version__}


def test_create_reports_where_the_time_went(client):
    r = client.post(f"{PREFIX}/identities", json={"name": "alice", "images": ALICE, "variant": "tiny_id"})
    assert r.status_code == 200, r.text
    timings = r.json()["timings"]
    assert {"wait for the WebUI", "model load", "face models", "clip load", "faces"} <= set(timings)


@pytest.fixture
def two_people(service):
    service.create_identity(ALICE_PATTERNED, "alice", "tiny_id")
    service.create_identity(BOB_PATTERNED, "bob", "tiny_id")
    service.mix("alice - bob", "slide")  # a slider: no reference embedding


def test_likeness_each_identity_on_its_own_face(client, two_people):
    image = b64(group_photo((800, 400), [(200, 200, 160, -80), (600, 200, 160, 80)]))  # Bob left, Alice right
    r = client.post(f"{PREFIX}/likeness", json={"image": image, "identities": ["alice", "BOB", "slide"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(s["name"], s["face"]) for s in body["scores"]] == [("alice", 2), ("bob", 1)]
    assert all(s["score"] > 0.9 and len(s["box"]) == 4 for s in body["scores"])
    assert body["scores"][0]["box"][0] > 400 > body["scores"][1]["box"][2]  # pixels: Alice's face on the right
    alice, bob = (s["score"] for s in body["scores"])
    assert body["text"] == f"alice {alice:.2f} (face 2), bob {bob:.2f} (face 1)"
    assert list(body["skipped"]) == ["slide"] and "no reference embedding" in body["skipped"]["slide"]
    one_face = {"image": "data:image/png;base64," + b64(ALICE_PATTERNED[0]), "identities": ["bob", "alice", "alice"]}
    body = client.post(f"{PREFIX}/likeness", json=one_face).json()
    assert [s["name"] for s in body["scores"]] == ["bob", "alice"]  # in the order asked, each once
    assert body["scores"][0] == {"name": "bob", "score": None, "face": None, "box": None}
    assert body["scores"][1]["face"] == 1 and body["text"].startswith("bob no face, alice 0.9")


@pytest.mark.parametrize("payload,status,fragment", [
    ({"image": NO_FACE, "identities": ["ghost"]}, 404, "no identity named 'ghost'"),
    ({"image": "%%%", "identities": ["alice"]}, 400, "image is not valid base64"),
    ({"image": base64.b64encode(b"not an image").decode(), "identities": ["alice"]}, 400, "image"),
    ({"image": NO_FACE, "identities": []}, 400, "identities is empty"),
    ({"image": NO_FACE}, 422, "identities"),
    ({"image": NO_FACE, "identities": ["alice"], "faces": 2}, 422, "faces"),
])
def test_likeness_bad_requests(client, two_people, payload, status, fragment):
    r = client.post(f"{PREFIX}/likeness", json=payload)
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"] if status != 422 else fragment in r.text


def test_likeness_without_a_face(client, two_people):
    r = client.post(f"{PREFIX}/likeness", json={"image": NO_FACE, "identities": ["alice"]})
    assert r.status_code == 200 and r.json()["text"] == "alice no face"


def test_a_keyerror_that_is_not_an_unknown_identity_is_a_500(service, tmp_path, caplog):
    host_options: dict[str, str] = {}  # a host whose options lack the Lora folder: a bug, not an unknown identity
    hooks = HostHooks(lora_dir=lambda: tmp_path / host_options["lora_dir"], lora_saved=lambda p: None)
    app = FastAPI()
    app.include_router(make_router(service, hooks))
    client = TestClient(app)
    assert client.post(f"{PREFIX}/identities", json={"name": "alice", "images": [ALICE[0]],
                                                     "variant": "tiny_id"}).status_code == 200
    with caplog.at_level("ERROR", logger="hyperlora_ext.app.http.status"):
        r = client.post(f"{PREFIX}/identities/alice/lora", json={})
    assert r.status_code == 500, r.text
    assert r.json()["detail"].startswith("HyperLoRA: saving the LoRA failed: KeyError: 'lora_dir'")
    assert caplog.records and caplog.records[-1].exc_info is not None


def test_a_damaged_identity_gets_one_status_on_every_route(client, service):
    assert client.post(f"{PREFIX}/identities", json={"name": "alice", "images": [ALICE[0]],
                                                     "variant": "tiny_id"}).status_code == 200
    damaged = service.identities.store.folder / "broken.safetensors"
    damaged.write_bytes(b"\0" * 64)
    requests = [("get", f"{PREFIX}/identities/broken", None), ("get", f"{PREFIX}/identities/BROKEN/crops", None),
                ("post", f"{PREFIX}/identities/broken/lora", {}),
                ("post", f"{PREFIX}/identities/mix", {"name": "x", "expression": "0.5*alice + 0.5*broken"}),
                ("post", f"{PREFIX}/likeness", {"image": NO_FACE, "identities": ["alice", "broken"]})]
    for method, url, body in requests:
        r = client.request(method, url, json=body)
        assert (r.status_code, url) == (409, url), r.text
        detail = r.json()["detail"]
        assert str(damaged) in detail and "cannot read identity file" in detail and "delete it" in detail, detail
    listed = client.get(f"{PREFIX}/identities").json()
    assert "cannot read identity file" in listed["damaged"]["broken"]
    assert client.post(f"{PREFIX}/identities/broken/rename", json={"new_name": "fixme"}).json() == {"name": "fixme"}
    assert client.delete(f"{PREFIX}/identities/fixme").json() == {"deleted": "fixme"}


def test_each_kind_of_error_has_one_status():
    expected = {UnknownIdentityError("x"): 404, NoFaceError("no face", {}): 422, FileExistsError("taken"): 409,
                DamagedIdentityError("damaged"): 409, NameConflictError("Alice, alice"): 409,
                MissingModelsError("missing", []): 503, DownloadError("offline"): 503, ValueError("bad name"): 400,
                ImageError("not an image"): 400, CheckpointError("bad variant"): 400, HyperLoRAError("bad mix"): 400}
    assert {type(e).__name__: http_status(e) for e in expected} == {type(e).__name__: s for e, s in expected.items()}
    for bug in (KeyError("lora_dir"), AttributeError("x"), RuntimeError("CUDA"), OSError("disk")):
        assert http_status(bug) is None  # a 500 naming it (ErrorRoute)


def test_create_takes_as_many_photos_as_the_panel(client):
    """#26 A1: the API and the panel share one limit (``MAX_PHOTOS``, 100) and one message."""
    photos = [b64(face_image(feature=(170, 110, 90), seed=100 + i)) for i in range(101)]
    r = client.post(f"{PREFIX}/identities", json={"name": "many", "images": photos[:100], "variant": "tiny_id"})
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["crops"]) == 100
    r = client.post(f"{PREFIX}/identities", json={"name": "more", "images": photos, "variant": "tiny_id"})
    assert r.status_code == 400 and "101 photos; at most 100 per identity" in r.json()["detail"]
