"""``app/publishing.py``: with the setting on, every identity is also a LoRA file in ``<Lora>/HyperLoRA`` that
follows it (create, replace, mix, slider, rename, delete); only files we published are ever touched."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest
import torch
from people import ALICE, BOB
from publish_workers import Setup, publish_worker
from safetensors.torch import load_file

from hyperlora_ext.app.core.publishing import MARKER_KEY, PublishStatus, published_header
from hyperlora_ext.identities.lora_card import read_sidecar, sidecar_path
from hyperlora_ext.lora import TRIGGER_PHRASE


@pytest.fixture
def setup(models_dir, tmp_path) -> Setup:
    return Setup(models_dir, tmp_path)


def test_off_by_default_nothing_is_written(models_dir, tmp_path):
    setup = Setup(models_dir, tmp_path, publish=False)
    setup.service.create_identity(ALICE, "alice", "tiny_id")
    assert not setup.lora_dir.exists() and setup.service.publish_note("alice") == "" and setup.changes == 0


def test_a_new_identity_becomes_a_complete_lora_card_equal_to_the_tag(setup):
    pred = setup.service.create_identity(ALICE, "alice", "tiny_id")
    path = setup.file("alice")
    header = published_header(path)
    assert header is not None and header[MARKER_KEY] == "1"
    assert header["hyperlora.identity_hash"] == pred.identity.hash and header["ss_output_name"] == path.stem
    tensors = load_file(path)
    tag = setup.service.loras.lora(pred.identity).tensors
    assert set(tensors) == set(tag) and all(torch.equal(tensors[k], tag[k]) for k in tag)
    assert path.with_name(path.stem + ".preview.png").is_file()
    card = read_sidecar(path)
    assert card["activation text"] == TRIGGER_PHRASE and card["preferred weight"] == 0.8
    assert setup.service.publish_note("alice") == "LoRA file: <lora:hyperlora_alice:0.8>" and setup.changes == 1


def test_the_file_follows_replace_mix_slider_rename_and_delete(setup):
    service = setup.service
    first = service.create_identity(ALICE, "alice", "tiny_id").identity
    service.create_identity([BOB], "bob", "tiny_id")
    replaced = service.create_identity(ALICE[:1], "alice", "tiny_id", overwrite=True).identity
    assert replaced.hash != first.hash
    assert published_header(setup.file("alice"))["hyperlora.identity_hash"] == replaced.hash
    mix = service.mix("0.5*alice + 0.5*bob", "pair")
    slider = service.mix("alice - bob", "slide")
    for identity in (mix, slider):
        assert published_header(setup.file(identity.name))["hyperlora.identity_hash"] == identity.hash
    assert service.rename("alice", "Alice") == "Alice"  # only the case: the file follows, once
    assert [p.name for p in setup.file("x").parent.glob("hyperlora_[aA]lice.safetensors")] == \
        ["hyperlora_Alice.safetensors"]
    assert service.rename("Alice", "carol") == "carol"
    assert not setup.file("Alice").exists() and not setup.file("Alice").with_suffix(".json").exists()
    assert published_header(setup.file("carol"))["hyperlora.identity"] == "carol"
    service.delete("carol")
    leftovers = sorted(p.name for p in setup.file("x").parent.iterdir())
    assert leftovers == sorted(f"hyperlora_{n}{s}" for n in ("bob", "pair", "slide")
                               for s in (".json", ".preview.png", ".safetensors"))


def test_a_users_own_file_of_that_name_is_never_touched(setup):
    mine = setup.lora_dir / "characters" / "hyperlora_bob.safetensors"  # anywhere in the Lora folder
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"not ours")
    setup.service.create_identity([BOB], "bob", "tiny_id")
    note = setup.service.publish_note("bob")
    assert "not published" in note and str(mine) in note and "rename it" in note
    assert not setup.file("bob").exists()
    setup.service.delete("bob")
    assert mine.read_bytes() == b"not ours"
    # The same inside our folder: a file without the marker is the user's too.
    theirs = setup.file("alice")
    theirs.parent.mkdir(parents=True, exist_ok=True)
    theirs.write_bytes(b"also mine")
    sidecar_path(theirs).write_text(json.dumps({"notes": "mine"}))
    setup.service.create_identity(ALICE, "alice", "tiny_id")
    setup.service.delete("alice")
    assert theirs.read_bytes() == b"also mine" and read_sidecar(theirs) == {"notes": "mine"}


def test_a_newer_version_published_by_another_process_is_not_deleted(setup):
    old = setup.service.create_identity(ALICE, "alice", "tiny_id").identity
    newer = setup.service.create_identity(ALICE[:1], "alice", "tiny_id", overwrite=True).identity
    assert not setup.publisher.unpublish("alice", old.hash)  # the hash the deleting process knew
    assert published_header(setup.file("alice"))["hyperlora.identity_hash"] == newer.hash
    assert setup.publisher.unpublish("alice", newer.hash) and not setup.file("alice").exists()


def test_card_editor_changes_survive_a_replace(setup):
    setup.service.create_identity(ALICE, "alice", "tiny_id")
    path = setup.file("alice")
    sidecar_path(path).write_text(json.dumps({**read_sidecar(path), "preferred weight": 0.65, "notes": "hi"}))
    setup.service.create_identity(ALICE[:1], "alice", "tiny_id", overwrite=True)
    card = read_sidecar(path)
    assert card["preferred weight"] == 0.65 and card["notes"] == "hi"


def test_turning_it_on_publishes_every_identity_and_reports_problems(models_dir, tmp_path):
    setup = Setup(models_dir, tmp_path, publish=False)
    setup.service.create_identity(ALICE, "alice", "tiny_id")
    setup.service.create_identity([BOB], "bob", "tiny_id")
    (tmp_path / "identities" / "broken.safetensors").write_bytes(b"damaged")
    assert not setup.publisher.start_publish_all()  # off: nothing to do
    setup.publish = True
    steps = []
    status = setup.publisher.publish_all(lambda f, d: steps.append((round(f, 2), d)))
    assert (status.running, status.done, status.total) == (False, 3, 3)
    assert len(status.problems) == 1 and status.problems[0].startswith("broken: ")
    assert status.text().startswith("Published 2 of 3 identities as LoRA files; 1 not published: broken: ")
    assert [d for _, d in steps] == ["Publishing alice (2 of 3)", "Publishing bob (3 of 3)"]
    assert setup.file("alice").exists() and setup.file("bob").exists()
    mtime = setup.file("alice").stat().st_mtime_ns
    assert setup.publisher.start_publish_all()
    setup.publisher.join(60)
    assert setup.file("alice").stat().st_mtime_ns == mtime  # up to date: not written again
    assert setup.publisher.status.done == 3


def test_the_status_line_while_publishing():
    status = PublishStatus(running=True, done=1, total=4, current="bob")
    assert status.text() == "Publishing identities as LoRA files: 1 of 4 (bob)"
    assert PublishStatus().text() == ""


def test_the_panel_says_where_the_file_is_and_holds_the_gpu_lock_once(setup, tmp_path):
    held = []

    class Lock:  # the host's queue lock: not re-entrant
        depth = 0

        def __enter__(self):
            assert Lock.depth == 0, "the GPU lock was taken twice by one thread"
            Lock.depth += 1
            held.append(1)

        def __exit__(self, *exc):
            Lock.depth -= 1

    setup.hooks.gpu_lock = Lock
    photos = []
    for i, image in enumerate(ALICE):
        photos.append(tmp_path / f"a{i}.png")
        image.save(photos[-1])
    _, text, name = setup.panel.create([str(p) for p in photos], "alice", "tiny_id", True, False, False,
                                       lambda f, d: None)
    assert name == "alice" and "LoRA file: &lt;lora:hyperlora_alice:0.8&gt;" in text and held == [1]
    text, _ = setup.panel.rename("alice", "dora")
    assert "&lt;lora:hyperlora_dora:0.8&gt;" in text and setup.file("dora").exists()


def test_several_processes_publishing_one_identity_leave_one_complete_file(setup, models_dir, tmp_path):
    identity = setup.service.create_identity(ALICE, "alice", "tiny_id").identity
    setup.file("alice").unlink()  # make every worker write it
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=publish_worker, args=(str(models_dir), str(tmp_path), barrier, results))
             for _ in range(3)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    assert outcomes == ["ok"] * 3
    assert published_header(setup.file("alice"))["hyperlora.identity_hash"] == identity.hash
    tensors = load_file(setup.file("alice"))
    tag = setup.service.loras.lora(identity).tensors
    assert all(torch.equal(tensors[k], tag[k]) for k in tag)
    assert [p.name for p in setup.file("alice").parent.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_the_http_api_says_where_each_identity_went_and_how_publishing_stands(setup):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from people import png_base64

    from hyperlora_ext.app.http.api import PREFIX, make_router

    app = FastAPI()
    app.include_router(make_router(setup.service, setup.hooks))
    client = TestClient(app)
    r = client.post(f"{PREFIX}/identities", json={"name": "alice", "images": [png_base64(i) for i in ALICE],
                                                   "variant": "tiny_id"})
    assert r.status_code == 200 and r.json()["lora_file"] == "LoRA file: <lora:hyperlora_alice:0.8>"
    r = client.post(f"{PREFIX}/identities/alice/rename", json={"new_name": "erin"})
    assert r.json() == {"name": "erin", "lora_file": "LoRA file: <lora:hyperlora_erin:0.8>"}
    state = client.get(f"{PREFIX}/publishing").json()
    assert state["enabled"] and state["files"] == ["hyperlora_erin.safetensors"] and not state["running"]
    setup.publish = False
    r = client.post(f"{PREFIX}/identities", json={"name": "bob", "images": [png_base64(BOB)], "variant": "tiny_id"})
    assert r.status_code == 200 and "lora_file" not in r.json()
    assert client.get(f"{PREFIX}/publishing").json()["enabled"] is False
