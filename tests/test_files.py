"""Safe names and atomic writes (``hyperlora_ext.files``)."""

import os

import pytest

from hyperlora_ext.files import LOCK_NAME, atomic_write, folder_lock, name_key, path_in, safe_name, spelling_in

fcntl = pytest.importorskip("fcntl") if os.name != "nt" else None


def test_safe_names_and_atomic_write(tmp_path):
    assert safe_name("  Alice Smith!  ") == "Alice Smith"
    assert safe_name("../../etc/passwd") == "etc_passwd"
    for bad in ("", "...", "CON", "///"):
        with pytest.raises(ValueError):
            safe_name(bad)
    assert path_in(tmp_path, "../x", ".safetensors").parent == tmp_path.resolve()
    target = tmp_path / "f.bin"
    atomic_write(target, b"one")
    with pytest.raises(FileExistsError):
        atomic_write(target, b"two", overwrite=False)
    assert target.read_bytes() == b"one" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_the_case_rule_and_existing_spellings(tmp_path):
    assert name_key(" Alice ") == name_key("ALICE") == "alice" and name_key("Ève") == name_key("ÈVE")
    assert spelling_in(tmp_path / "missing", "x.safetensors") == "x.safetensors"
    (tmp_path / "Alice.safetensors").write_bytes(b"")
    assert spelling_in(tmp_path, "alice.safetensors") == "Alice.safetensors"
    assert spelling_in(tmp_path, "bob.safetensors") == "bob.safetensors"


@pytest.mark.skipif(os.name == "nt", reason="no flock on Windows: the lock is a no-op there")
def test_folder_lock_excludes_other_holders_until_released(tmp_path):
    folder = tmp_path / "new" / "ids"
    other = None
    with folder_lock(folder):
        other = os.open(folder / LOCK_NAME, os.O_RDWR)  # another process's open of the lock file
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released at the end of the block
    os.close(other)
