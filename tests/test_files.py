"""Safe names and atomic writes (``hyperlora_ext.files``)."""

import pytest

from hyperlora_ext.files import atomic_write, path_in, safe_name


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
