"""Fake of ``modules/patches.py`` (A1111 v1.10.1@82a973c = Forge@dfdcbab): replace a module or class attribute,
remember the original per caller key, undo it. Same errors as the host: patching twice for one
key, or undoing what is not patched, raises ``RuntimeError``."""

from collections import defaultdict

originals: dict = defaultdict(dict)


def patch(key, obj, field, replacement):
    if (obj, field) in originals[key]:
        raise RuntimeError(f"patch for {field} is already applied")
    original_func = getattr(obj, field)
    originals[key][(obj, field)] = original_func
    setattr(obj, field, replacement)
    return original_func


def undo(key, obj, field):
    if (obj, field) not in originals[key]:
        raise RuntimeError(f"there is no patch for {field} to undo")
    setattr(obj, field, originals[key].pop((obj, field)))


def original(key, obj, field):
    return originals[key].get((obj, field), None)
