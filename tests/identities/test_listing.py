"""The identity folder's listing (``identities.listing``): what it finds and reports, and when a
kept listing is used again. A change "within the same tick" is made real by setting the folder's
mtime back to the value it had before the change, as a filesystem with coarse timestamps does."""

from __future__ import annotations

import os
import time

from store_workers import make_identity

from hyperlora_ext.files import write_temp
from hyperlora_ext.identities.listing import RACY_SECONDS, FolderListing, read_listing
from hyperlora_ext.identities.store import IdentityStore


def put(folder, name: str, seed: int = 1) -> None:
    """An identity file written by hand (a file manager, a copy): no store, no marker."""
    (folder / f"{name}.safetensors").write_bytes(make_identity(seed).to_bytes())


def set_mtime(folder, ns: int) -> None:
    os.utime(folder, ns=(ns, ns))


def settled_folder(tmp_path, *names: str):
    """A folder with ``names`` that last changed an hour ago (a listing of it is kept)."""
    folder = tmp_path / "ids"
    folder.mkdir()
    for name in names:
        put(folder, name)
    set_mtime(folder, time.time_ns() - 3600 * 10**9)
    return folder


def test_a_listing_is_kept_while_the_folder_is_unchanged(tmp_path):
    folder = settled_folder(tmp_path, "alice", "bob")
    listing = FolderListing(folder)
    first = listing.get()
    assert sorted(first.found) == ["alice", "bob"] and listing.get() is first
    put(folder, "carol")  # the folder's mtime moves on
    assert sorted(listing.get().found) == ["alice", "bob", "carol"]


def test_a_store_write_within_the_same_tick_is_seen_through_the_marker(tmp_path):
    folder = settled_folder(tmp_path, "alice")
    before = os.stat(folder).st_mtime_ns
    reader = IdentityStore(folder)  # another process's store
    assert reader.names() == ["alice"]
    IdentityStore(folder).save(make_identity(2), "bob")
    set_mtime(folder, before)  # the write happened within the tick of the last change
    assert reader.names() == ["alice", "bob"] and reader.resolve("BOB") == "bob"
    IdentityStore(folder).delete("alice")
    set_mtime(folder, before)
    assert reader.names() == ["bob"] and "alice" not in reader


def test_a_listing_read_soon_after_a_change_is_not_kept(tmp_path):
    folder = settled_folder(tmp_path)
    put(folder, "alice")
    changed = time.time_ns() - int(RACY_SECONDS * 1e9) // 2  # within the racy window, and set exactly
    set_mtime(folder, changed)
    listing = FolderListing(folder)
    assert sorted(listing.get().found) == ["alice"]
    put(folder, "bob")  # by hand, no marker, and within the same tick
    set_mtime(folder, changed)
    assert sorted(listing.get().found) == ["alice", "bob"]


def test_a_listing_with_a_write_in_progress_is_not_kept(tmp_path):
    folder = settled_folder(tmp_path, "alice")
    before = os.stat(folder).st_mtime_ns
    tmp = write_temp(folder / "bob.safetensors", make_identity(2).to_bytes())  # another process writing
    set_mtime(folder, before)
    listing = FolderListing(folder)
    assert sorted(listing.get().found) == ["alice"]
    os.link(tmp, folder / "bob.safetensors")
    os.unlink(tmp)
    set_mtime(folder, before)
    assert sorted(listing.get().found) == ["alice", "bob"]


def test_names_differing_only_in_case_are_reported(tmp_path):
    folder = settled_folder(tmp_path, "Alice", "alice", "bob")
    listing, settled = read_listing(folder)
    assert settled and sorted(listing.found) == ["Alice", "alice", "bob"]
    assert listing.spellings["alice"] == ("Alice", "alice") and listing.spellings["bob"] == ("bob",)
    assert set(listing.problems) == {"Alice.safetensors", "alice.safetensors"}
    problem = listing.problems["alice.safetensors"]
    assert str(folder / "alice.safetensors") in problem and "differs from 'Alice' only in case" in problem
    assert "rename or delete all but one" in problem


def test_a_missing_folder_lists_as_empty_and_is_seen_once_made(tmp_path):
    listing = FolderListing(tmp_path / "ids")
    assert listing.get().found == {} and listing.version() is None
    IdentityStore(tmp_path / "ids").save(make_identity(1), "alice")
    assert list(listing.get().found) == ["alice"]
