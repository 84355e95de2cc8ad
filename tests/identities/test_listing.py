"""The identity folder's listing (``identities.listing``): what it finds and reports."""

from __future__ import annotations

from store_workers import make_identity

from hyperlora_ext.identities.listing import read_listing


def put(folder, name: str, seed: int = 1) -> None:
    """An identity file written by hand (a file manager, a copy): no store, no marker."""
    (folder / f"{name}.safetensors").write_bytes(make_identity(seed).to_bytes())


def test_names_differing_only_in_case_are_reported(tmp_path):
    folder = tmp_path / "ids"
    folder.mkdir()
    for name in ("Alice", "alice", "bob"):
        put(folder, name)
    listing, settled = read_listing(folder)
    assert settled and sorted(listing.found) == ["Alice", "alice", "bob"]
    assert listing.spellings["alice"] == ("Alice", "alice") and listing.spellings["bob"] == ("bob",)
    assert set(listing.problems) == {"Alice.safetensors", "alice.safetensors"}
    problem = listing.problems["alice.safetensors"]
    assert str(folder / "alice.safetensors") in problem and "differs from 'Alice' only in case" in problem
    assert "rename or delete all but one" in problem
