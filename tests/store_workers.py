"""Worker processes for tests/test_store_processes.py, and identities built without a model.

Each worker holds its own ``IdentityStore`` on one shared folder (as each WebUI process
does), waits for its task, meets the other workers at a barrier so the tasks start together,
and answers ``("ok", value)`` or ``(exception class name, message)``.
"""

from __future__ import annotations

import torch
from PIL import Image

from hyperlora_ext.errors import HyperLoRAError
from hyperlora_ext.identities.identity import Identity
from hyperlora_ext.identities.store import IdentityStore

TIMEOUT = 120.0
MAX_POLLS = 200_000


def make_identity(seed: int, color: tuple[int, int, int] | None = None) -> Identity:
    """A small identity: (Q, K) = (24, 16) unit tokens from ``seed``; one solid crop of ``color``."""
    tokens = torch.nn.functional.normalize(torch.randn(24, 16, generator=torch.Generator().manual_seed(seed)), dim=-1)
    crops = [Image.new("RGB", (64, 64), color)] if color is not None else []
    return Identity(tokens=tokens, variant="tiny_id", model_fingerprint="0123456789abcdef", crops=crops,
                    created="2025-01-01T00:00:00")


def op_noop(store: IdentityStore, stop) -> None:
    return None


def op_save(store: IdentityStore, stop, name: str, seed: int, color=None, overwrite: bool = False) -> str:
    identity = make_identity(seed, color)
    store.save(identity, name, overwrite=overwrite)
    return identity.hash


def op_save_many(store: IdentityStore, stop, name: str, seeds: list[int]) -> list[str]:
    """Overwrite ``name`` with each seed in turn (same file size every time: no crops)."""
    hashes = []
    for seed in seeds:
        identity = make_identity(seed)
        store.save(identity, name, overwrite=True)
        hashes.append(identity.hash)
    return hashes


def op_churn(store: IdentityStore, stop, prefix: str, count: int) -> int:
    """Create, rename and delete ``count`` identities, one after another."""
    for i in range(count):
        store.save(make_identity(1000 + i, (i, 100, 200)), f"{prefix}new{i}")
        store.rename(f"{prefix}new{i}", f"{prefix}old{i}")
        store.delete(f"{prefix}old{i}")
    return count


def op_rename(store: IdentityStore, stop, old: str, new: str) -> str:
    return store.rename(old, new)


def op_delete(store: IdentityStore, stop, name: str) -> str:
    return store.delete(name)


def op_get(store: IdentityStore, stop, name: str) -> str:
    return store.get(name).hash


def op_names(store: IdentityStore, stop) -> list[str]:
    return store.names()


def op_poll(store: IdentityStore, stop, name: str) -> dict:
    """Read ``name`` until ``stop`` is set: what was seen, then the version there at the end."""
    seen, errors, missing, polls = set(), [], 0, 0
    while not stop.is_set() and polls < MAX_POLLS and not errors:
        polls += 1
        try:
            seen.add(store.get(name).hash)
        except KeyError:
            missing += 1
        except HyperLoRAError as exc:
            errors.append(str(exc))
    return {"polls": polls, "seen": sorted(seen), "errors": errors, "missing": missing,
            "final": store.get(name).hash}


def op_poll_list(store: IdentityStore, stop) -> dict:
    """List the folder (``load_all``) until ``stop`` is set: every name and problem seen."""
    names, problems, polls = set(), {}, 0
    while not stop.is_set() and polls < MAX_POLLS:
        polls += 1
        good, bad = store.load_all()
        names.update(good)
        problems.update(bad)
    return {"polls": polls, "names": sorted(names), "problems": problems}


OPS = {name[3:]: fn for name, fn in globals().items() if name.startswith("op_")}


def serve(folder: str, tasks, results, barrier, stop) -> None:
    """Worker loop: ``(op, kwargs)`` tasks until ``None``."""
    store = IdentityStore(folder)
    while True:
        task = tasks.get()
        if task is None:
            return
        op, kwargs = task
        try:
            barrier.wait(TIMEOUT)
            results.put(("ok", OPS[op](store, stop, **kwargs)))
        except Exception as exc:  # reported to the test, which checks the kind and message
            results.put((type(exc).__name__, str(exc)))
