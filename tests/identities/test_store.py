"""IdentityStore on its own: files that are not identities, half-written files, exclusive
publishing, caches that notice other writers, previews that follow their identity."""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest
import torch
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from PIL import Image
from safetensors.torch import save_file
from store_workers import make_identity

from hyperlora_ext import HyperLoRAError
from hyperlora_ext.errors import DamagedIdentityError, NameConflictError, UnknownIdentityError
from hyperlora_ext.files import LOCK_NAME, atomic_write, move, write_temp
from hyperlora_ext.identities.listing import MARKER
from hyperlora_ext.identities.store import STALE_TEMP_SECONDS, IdentityStore


@pytest.fixture
def store(tmp_path):
    store = IdentityStore(tmp_path / "ids")
    store.save(make_identity(1, (200, 10, 10)), "alice")
    return store


def listed(folder) -> list[str]:
    """The folder's files, without the store's own bookkeeping (its write lock and listing marker)."""
    return sorted(n for n in os.listdir(folder) if n not in (LOCK_NAME, MARKER))


def preview_color(store, name):
    with Image.open(store.preview_path(name)) as img:
        return img.convert("RGB").getpixel((3, 3))


def test_foreign_and_damaged_files_are_reported_never_loaded(store, tmp_path):
    folder = store.folder
    whole = store.path("alice").read_bytes()
    (folder / "junk.safetensors").write_bytes(os.urandom(4000))
    (folder / "half.safetensors").write_bytes(whole[: len(whole) // 2])
    (folder / "empty.safetensors").write_bytes(b"")
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(2, 2)}, str(folder / "somelora.safetensors"))
    (folder / "a?b.safetensors").write_bytes(whole)  # a user's copy under a name the store cannot address
    (folder / "con.safetensors").write_bytes(whole)
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(whole)
    (folder / "escape.safetensors").symlink_to(outside)
    (folder / "notes.txt").write_text("not an identity")  # other files are none of our business

    good, bad = store.load_all()
    assert list(good) == ["alice"]
    expect = {"junk": ["junk.safetensors", "cannot read identity file", "delete it"],
              "half": ["half.safetensors", "cannot read identity file", "re-create the identity"],
              "empty": ["empty.safetensors", "cannot read identity file"],
              "somelora": ["somelora.safetensors", "not a HyperLoRA identity file", "Lora folder"],
              "a?b.safetensors": ["a?b.safetensors", "not a usable identity file name", "'a_b.safetensors'"],
              "con.safetensors": ["con.safetensors", "not a usable identity file name", "rename it"],
              "escape": ["escape.safetensors", "would leave the folder", "remove it"]}
    assert set(bad) == set(expect)
    for key, fragments in expect.items():
        for fragment in fragments:
            assert fragment in bad[key], (key, bad[key])
    assert store.names() == ["alice", "empty", "escape", "half", "junk", "somelora"]
    for name in ("junk", "half", "empty", "somelora", "escape"):
        with pytest.raises(HyperLoRAError):
            store.get(name)
    with pytest.raises(KeyError):
        store.get("a?b")
    assert store.get("alice").hash == make_identity(1).hash


def test_temp_files_are_ignored_while_fresh_and_reported_when_left_over(store):
    folder = store.folder
    fresh = write_temp(store.path("bob"), store.path("alice").read_bytes()[:100])  # a write in progress
    old = write_temp(store.path("carol"), b"half")
    old_preview = write_temp(store.preview_path("carol"), b"half")
    past = time.time() - STALE_TEMP_SECONDS - 60
    for path in (old, old_preview):
        os.utime(path, (past, past))
    assert fresh.name.startswith(".bob.safetensors.") and fresh.name.endswith(".tmp")
    good, bad = store.load_all()
    assert list(good) == ["alice"] and store.names() == ["alice"]
    assert set(bad) == {old.name, old_preview.name}
    assert str(old) in bad[old.name] and "interrupted write" in bad[old.name] and "delete it" in bad[old.name]
    assert "bob" not in store and fresh.exists()  # never touched: another process may still be writing it
    assert listed(folder) == sorted(
        [fresh.name, old.name, old_preview.name, "alice.preview.png", "alice.safetensors"])


def test_move_never_clobbers(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    a.write_bytes(b"A")
    b.write_bytes(b"B")
    with pytest.raises(FileExistsError):
        move(a, b)
    assert a.read_bytes() == b"A" and b.read_bytes() == b"B"
    with pytest.raises(FileNotFoundError):
        move(tmp_path / "gone", c)
    assert not c.exists()
    move(a, c)
    assert not a.exists() and c.read_bytes() == b"A"
    move(c, b, overwrite=True)
    assert b.read_bytes() == b"A" and sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    with pytest.raises(FileExistsError, match="already exists"):
        atomic_write(b, b"new", overwrite=False)
    assert b.read_bytes() == b"A" and sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no temp left


def test_taken_names_name_the_identity(store):
    for name in ("alice", "ALICE"):
        with pytest.raises(FileExistsError, match="identity named 'alice' already exists.*choose another name"):
            store.save(make_identity(2), name)
    store.save(make_identity(3), "bob")
    with pytest.raises(FileExistsError, match="identity named 'alice'"):
        store.rename("bob", "Alice")
    assert store.get("alice").hash == make_identity(1).hash and store.get("bob").hash == make_identity(3).hash


def test_a_second_store_sees_every_change(store):
    other = IdentityStore(store.folder)  # another process's view of the folder
    assert other.get("alice").hash == make_identity(1).hash
    mtime = os.stat(store.path("alice")).st_mtime_ns
    size = os.stat(store.path("alice")).st_size
    store.save(make_identity(2, (200, 10, 10)), "alice", overwrite=True)
    os.utime(store.path("alice"), ns=(mtime, mtime))  # same size and time: coarse-clock filesystems
    assert os.stat(store.path("alice")).st_size == size
    assert other.get("alice").hash == make_identity(2).hash
    store.rename("alice", "alicia")
    assert "alice" not in other and other.get("ALICIA").hash == make_identity(2).hash
    with pytest.raises(KeyError):
        other.get("alice")
    store.delete("alicia")
    assert other.names() == [] and other.load_all() == ({}, {})


def test_previews_follow_their_identity(store):
    assert preview_color(store, "alice") == (200, 10, 10)
    store.preview_path("bob").write_bytes(b"an orphan from an old identity")
    store.save(make_identity(2, (10, 200, 10)), "bob")
    assert preview_color(store, "bob") == (10, 200, 10)
    store.preview_path("bob").write_bytes(b"written by a process that lost a race")
    assert store.rename("bob", "robert") == "robert"
    assert preview_color(store, "robert") == (10, 200, 10) and not store.preview_path("bob").exists()
    store.save(make_identity(3), "robert", overwrite=True)  # no face crop: no preview
    assert not store.preview_path("robert").exists()
    store.delete("alice")
    assert listed(store.folder) == ["robert.safetensors"]


def test_lookups_list_the_folder_only_after_it_changed(tmp_path, monkeypatch):
    store = IdentityStore(tmp_path / "ids")
    for i in range(12):
        store.save(make_identity(i), f"person{i}")
    past = time.time() - 3600
    os.utime(store.folder, (past, past))  # last changed an hour ago
    listings = []
    scandir = os.scandir

    def counting_scandir(path="."):
        if os.fspath(path) == os.fspath(store.folder):
            listings.append(path)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    for name in store.names():  # the Extra Networks page: one card per identity, likeness per image
        assert store.get(name).name == name and store.resolve(name.upper()) == name and name in store
    assert len(store.load_all()[0]) == 12
    assert len(listings) == 1  # once for 12 cards, not once per lookup (O(N) for N identities, not O(N^2))
    store.save(make_identity(99), "newcomer")  # the store's own write: seen at once
    assert "newcomer" in store.names() and store.get("NEWCOMER").hash == make_identity(99).hash

# ---- the one case rule: names are case-insensitive, one file per name -------------------------
def test_overwrite_in_another_case_replaces_the_stored_identity(tmp_path):
    store = IdentityStore(tmp_path / "ids")
    store.save(make_identity(1, (200, 10, 10)), "Alice")
    assert store.save(make_identity(2, (10, 200, 10)), "alice", overwrite=True) == "Alice"
    assert listed(store.folder) == ["Alice.preview.png", "Alice.safetensors"]
    for variant in ("Alice", "alice", "ALICE"):
        assert store.resolve(variant) == "Alice" and store.get(variant).hash == make_identity(2).hash
    assert store.get("alice").name == "Alice" and preview_color(store, "Alice") == (10, 200, 10)


def test_a_case_only_rename_leaves_no_file_of_the_old_spelling(tmp_path):
    store = IdentityStore(tmp_path / "ids")
    store.save(make_identity(1, (200, 10, 10)), "Alice")
    assert store.rename("ALICE", "alice") == "alice"
    assert listed(store.folder) == ["alice.preview.png", "alice.safetensors"]
    assert store.resolve("ALICE") == "alice" and preview_color(store, "alice") == (200, 10, 10)


def test_names_differing_only_in_case_made_outside_the_store_are_a_clear_conflict(tmp_path):
    store = IdentityStore(tmp_path / "ids")
    store.save(make_identity(1), "Alice")
    os.link(store.path("Alice"), store.folder / "alice.safetensors")  # e.g. a copy from another machine
    for spelling in ("ALICE", "aLiCe"):
        with pytest.raises(NameConflictError, match="'ALICE' matches 2 identities .*'Alice', 'alice'.*rename or delete"
                           if spelling == "ALICE" else "aLiCe"):
            store.get(spelling)
    assert store.get("Alice").name == "Alice" and store.get("alice").name == "alice"  # exact spellings still work
    assert "ALICE" in store
    with pytest.raises(NameConflictError):
        store.save(make_identity(2), "ALICE", overwrite=True)
    good, bad = store.load_all()
    assert sorted(good) == ["Alice", "alice"] and set(bad) == {"Alice.safetensors", "alice.safetensors"}
    assert store.rename("alice", "Alicia") == "Alicia"  # the fix the message asks for
    assert store.resolve("ALICE") == "Alice" and store.load_all()[1] == {}


def test_unknown_and_damaged_identities_raise_their_own_errors(tmp_path):
    store = IdentityStore(tmp_path / "ids")
    store.save(make_identity(1), "alice")
    (store.folder / "broken.safetensors").write_bytes(b"not an identity")
    with pytest.raises(UnknownIdentityError, match="no identity named 'ghost'") as unknown:
        store.get("ghost")
    assert isinstance(unknown.value, KeyError) and unknown.value.name == "ghost"
    for call in (lambda: store.rename("ghost", "x"), lambda: store.delete("ghost")):
        with pytest.raises(UnknownIdentityError):
            call()
    with pytest.raises(DamagedIdentityError, match="broken.safetensors: cannot read identity file.*delete it"):
        store.get("BROKEN")


BASES = ("alice", "bob", "éva")
VARIANT = st.sampled_from(BASES).flatmap(lambda base: st.lists(st.booleans(), min_size=len(base), max_size=len(base))
                                         .map(lambda up: "".join(c.upper() if u else c for c, u in zip(base, up))))
SEED = st.integers(1, 50)


def seed_color(seed: int) -> tuple[int, int, int]:
    return (5 * seed, 250 - 4 * seed, 100)


class CaseRule(RuleBasedStateMachine):
    """Any sequence of create / overwrite / rename / delete with names in random case keeps one
    file per case-insensitive name, under the spelling it was created or last renamed with, and
    every spelling of it finds it (also for another process's store on the folder)."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp()
        self.store = IdentityStore(os.path.join(self.tmp, "ids"))
        self.model: dict[str, tuple[str, int]] = {}  # lower-case name -> (stored name, seed)

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(name=VARIANT, seed=SEED, overwrite=st.booleans())
    def save(self, name: str, seed: int, overwrite: bool) -> None:
        held = self.model.get(name.lower())
        if held and not overwrite:
            with pytest.raises(FileExistsError, match=f"identity named {held[0]!r} already exists"):
                self.store.save(make_identity(seed, seed_color(seed)), name)
            return
        stored = held[0] if held else name
        assert self.store.save(make_identity(seed, seed_color(seed)), name, overwrite=overwrite) == stored
        self.model[name.lower()] = (stored, seed)

    @rule(old=VARIANT, new=VARIANT)
    def rename(self, old: str, new: str) -> None:
        held, taken = self.model.get(old.lower()), self.model.get(new.lower())
        if held is None:
            with pytest.raises(KeyError):
                self.store.rename(old, new)
        elif taken is not None and taken is not held:
            with pytest.raises(FileExistsError, match=f"identity named {taken[0]!r} already exists"):
                self.store.rename(old, new)
        else:
            assert self.store.rename(old, new) == new
            del self.model[old.lower()]
            self.model[new.lower()] = (new, held[1])

    @rule(name=VARIANT)
    def delete(self, name: str) -> None:
        held = self.model.pop(name.lower(), None)
        if held is None:
            with pytest.raises(KeyError):
                self.store.delete(name)
        else:
            assert self.store.delete(name) == held[0]

    @invariant()
    def one_file_per_name_found_by_every_spelling(self) -> None:
        folder = self.store.folder
        expected = sorted(f"{stored}{suffix}" for stored, _ in self.model.values()
                          for suffix in (".preview.png", ".safetensors"))
        assert (listed(folder) if folder.exists() else []) == expected
        other = IdentityStore(folder)
        for key, (stored, seed) in self.model.items():
            for spelling in {key, key.upper(), key.title(), stored}:
                assert self.store.resolve(spelling) == stored and other.resolve(spelling) == stored
            assert self.store.get(key.upper()).hash == make_identity(seed).hash
            assert preview_color(self.store, stored) == seed_color(seed)


CaseRule.TestCase.settings = settings(max_examples=40, stateful_step_count=12, deadline=None)
test_case_rule = CaseRule.TestCase
