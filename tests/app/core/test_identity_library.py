"""``IdentityLibrary``: identities created from photos, names, rename / delete with their card notes."""

import html
import io

import pytest
import torch
from people import ALICE, ALICE_PATTERNED, BOB, BOB_PATTERNED
from PIL import Image

from hyperlora_ext.app.core.tags import (
    TagRequest,
)
from hyperlora_ext.identities.store import IdentityStore


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_create_identity_stores_file_and_preview(service, alice):
    store = service.identities.store
    assert store.names() == ["alice"]
    assert store.path("alice").is_file() and store.preview_path("alice").is_file()
    loaded = service.identities.get("ALICE")  # case-insensitive lookup
    assert loaded.name == "alice" and loaded.hash == alice.hash
    assert torch.equal(loaded.tokens, alice.tokens) and loaded.source_names == ("a1.png", "a2.png")


def test_create_identity_refuses_taken_names_and_bad_input(service, alice):
    before = service.identities.store.path("alice").read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        service.create_identity([BOB], "Alice", "tiny_id")
    assert service.identities.store.path("alice").read_bytes() == before
    with pytest.raises(ValueError, match="not usable as a name"):
        service.create_identity([BOB], "../..", "tiny_id")
    with pytest.raises(ValueError, match="no images"):
        service.create_identity([], "carol", "tiny_id")
    replaced = service.create_identity([BOB], "alice", "tiny_id", overwrite=True).identity
    assert service.identities.get("alice").hash == replaced.hash != alice.hash


def test_names_cannot_escape_the_folder(tmp_path):
    store = IdentityStore(tmp_path / "ids")
    inside = (tmp_path / "ids").resolve()
    for name, stem in (("../evil", "evil"), ("a/b", "a_b"), ("C:\\x", "C_x"), ("..\\..\\x", "x")):
        assert store.path(name) == inside / f"{stem}.safetensors"
    for name in ("..", "con", "///"):  # nothing usable is left: refused, never a path outside
        with pytest.raises(ValueError):
            store.path(name)


def test_rename_and_delete(service, alice):
    assert service.rename("alice", "Alice Smith") == "Alice Smith"
    assert service.identities.store.names() == ["Alice Smith"]
    assert service.identities.store.preview_path("Alice Smith").is_file()
    assert service.identities.get("alice smith").hash == alice.hash
    service.create_identity([BOB], "bob", "tiny_id")
    with pytest.raises(FileExistsError):
        service.rename("bob", "alice smith")
    with pytest.raises(KeyError):
        service.rename("nobody", "x")
    assert service.delete("bob") == "bob"
    store = service.identities.store
    assert store.names() == ["Alice Smith"] and not store.preview_path("bob").exists()
    with pytest.raises(KeyError):
        service.delete("bob")


def test_damaged_identity_file_is_reported_not_hidden(service, alice):
    service.identities.store.path("broken").write_bytes(b"not a safetensors file")
    good, bad = service.identities.store.load_all()
    assert list(good) == ["alice"] and "broken" in bad and "broken.safetensors" in bad["broken"]
    res = service.resolve([TagRequest("broken", 1.0)])
    assert not res.weights and "cannot read identity file" in res.warnings[0]


def test_card_notes_follow_rename_and_go_with_delete(service, panel):
    service.create_identity(ALICE, "alice", "tiny_id")
    notes = service.identities.user_metadata_path("alice")
    notes.write_text('{"description": "my friend"}')
    text, now = panel.rename("alice", "alice2")
    text = html.unescape(text)
    assert now == "alice2" and "Renamed 'alice' to 'alice2'" in text
    assert not notes.exists()
    assert service.identities.user_metadata_path("alice2").read_text() == '{"description": "my friend"}'
    assert service.identities.store.names() == ["alice2"]  # the .json beside it is not an identity
    text, gone = panel.delete("alice2", True)
    text = html.unescape(text)
    assert gone is None and "Deleted 'alice2'" in text
    assert not service.identities.user_metadata_path("alice2").exists() and service.identities.store.names() == []


def test_create_checked_drops_the_stranger(service):
    pred, check = service.create_checked([*ALICE_PATTERNED[:2], BOB_PATTERNED[0]], "alice", "tiny_id",
                                         image_names=["a1", "a2", "who"], drop_flagged=True)
    assert check.flagged == ("who",) and "left out" in pred.skipped["who"] and len(pred.faces) == 2
    kept = service.identities.get("alice")
    assert kept.hash == pred.identity.hash and len(kept.source_names) == 2


def test_the_first_create_times_the_loading(service):
    first = service.create_identity(ALICE, "alice", "tiny_id").timings
    assert {"model load", "face models", "clip load", "faces", "clip", "hypernet"} <= set(first)
    again = service.create_identity([BOB], "bob", "tiny_id").timings
    assert not {"model load", "face models", "clip load"} & set(again)  # loaded once
    assert all(v >= 0 for v in (*first.values(), *again.values()))


def test_one_identity_per_name_in_any_case(service, panel):
    first = service.create_identity(ALICE, "Alice", "tiny_id").identity
    notes = service.identities.user_metadata_path("Alice")
    notes.write_text('{"description": "my friend"}')
    again = service.create_identity([BOB], "ALICE", "tiny_id", overwrite=True).identity  # replaces Alice
    assert again.name == "Alice" and service.identities.store.names() == ["Alice"] and again.hash != first.hash
    service.create_identity([BOB], "bob", "tiny_id")
    assert service.mix("0.5*ALICE + 0.5*bob", "alice", overwrite=True).name == "Alice"
    assert service.identities.store.names() == ["Alice", "bob"]
    assert [a.name for a in service.resolve([TagRequest("aLiCe", 1.0)]).applied] == ["Alice"]
    text, now = panel.rename("ALICE", "alice")  # another spelling of its own name
    assert now == "alice" and service.identities.store.names() == ["alice", "bob"]
    assert service.identities.user_metadata_path("alice").read_text() == '{"description": "my friend"}'
    assert sorted(p.name for p in service.identities.store.folder.glob("*lice*")) == [
        "alice.json", "alice.preview.png", "alice.safetensors"]
    assert service.delete("ALICE") == "alice" and not service.identities.user_metadata_path("alice").exists()
