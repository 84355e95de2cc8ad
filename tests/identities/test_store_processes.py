"""Several processes on one identity folder, as several WebUI instances sharing a models folder.

Real processes ('spawn', like a fresh WebUI), each with its own ``IdentityStore``; a barrier
starts each round's tasks together, events end the polling readers. Every wait is bounded.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from pathlib import Path

import pytest
from PIL import Image
from store_workers import TIMEOUT, serve

from hyperlora_ext.app.core.service import HyperLoRAService, ServiceConfig
from hyperlora_ext.app.core.tags import TagRequest
from hyperlora_ext.identities.store import IdentityStore

WORKERS = 6


class Pool:
    """``WORKERS`` long-lived processes; ``run`` gives each a task (default: none) for one round."""

    def __init__(self, folder: Path) -> None:
        ctx = mp.get_context("spawn")
        self.folder = folder
        self.barrier = ctx.Barrier(WORKERS)
        self.stop = ctx.Event()
        self.tasks = [ctx.Queue() for _ in range(WORKERS)]
        self.results = [ctx.Queue() for _ in range(WORKERS)]
        self.procs = [ctx.Process(target=serve, args=(str(folder), self.tasks[i], self.results[i], self.barrier,
                                                      self.stop), daemon=True) for i in range(WORKERS)]
        for p in self.procs:
            p.start()

    def run(self, tasks: dict[int, tuple[str, dict]], stop_after: tuple[int, ...] = ()) -> dict[int, tuple]:
        """Start ``tasks`` together; once the workers in ``stop_after`` answered, set the stop
        event (ends polling readers). Returns each worker's answer."""
        self.stop.clear()
        for i in range(WORKERS):
            self.tasks[i].put(tasks.get(i, ("noop", {})))
        answers = {}
        for i in [*stop_after, *(i for i in range(WORKERS) if i not in stop_after)]:
            if i not in stop_after:
                self.stop.set()
            try:
                answers[i] = self.results[i].get(timeout=TIMEOUT)
            except queue.Empty:
                pytest.fail(f"worker {i} did not answer within {TIMEOUT} s (task {tasks.get(i)})")
        return {i: answers[i] for i in tasks}

    def close(self) -> None:
        for q in self.tasks:
            q.put(None)
        for p in self.procs:
            p.join(30)
            if p.is_alive():
                p.kill()


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shared") / "identities"
    pool = Pool(folder)
    yield pool
    pool.close()


def files(folder: Path, prefix: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith(prefix))


def preview_color(store: IdentityStore, name: str) -> tuple[int, int, int]:
    with Image.open(store.preview_path(name)) as img:
        return img.convert("RGB").getpixel((5, 5))


def color(i: int, r: int) -> tuple[int, int, int]:
    return (30 * i + 10, 200 - 30 * i, 17 * r)


def test_racing_creates_leave_one_complete_file(pool):
    store = IdentityStore(pool.folder)
    for r in range(3):
        name = f"race{r}"
        answers = pool.run({i: ("save", {"name": name, "seed": 100 * r + i, "color": color(i, r)})
                            for i in range(WORKERS)})
        winners = [i for i, (kind, _) in answers.items() if kind == "ok"]
        assert len(winners) == 1, answers
        for i, (kind, message) in answers.items():
            if i not in winners:
                assert kind == "FileExistsError", answers
                assert f"identity named {name!r} already exists" in message and "choose another name" in message
        assert files(pool.folder, f"race{r}") == [f"{name}.preview.png", f"{name}.safetensors"]
        assert not [n for n in os.listdir(pool.folder) if n.endswith(".tmp")]
        assert store.get(name).hash == answers[winners[0]][1]
        assert preview_color(store, name) == color(winners[0], r)  # the winner's face, not a loser's


def test_racing_creates_of_case_variants_leave_one_identity(pool):
    store = IdentityStore(pool.folder)
    for r in range(3):
        spellings = [f"case{r}", f"Case{r}", f"CASE{r}", f"cAse{r}", f"caSe{r}", f"casE{r}"]
        answers = pool.run({i: ("save", {"name": spellings[i], "seed": 300 + 10 * r + i, "color": color(i, r)})
                            for i in range(WORKERS)})
        winners = [i for i, (kind, _) in answers.items() if kind == "ok"]
        assert len(winners) == 1, answers  # names are case-insensitive: one identity per name
        for i, (kind, message) in answers.items():
            if i not in winners:
                assert kind == "FileExistsError" and f"identity named {spellings[winners[0]]!r}" in message, answers
        stored = spellings[winners[0]]
        assert sorted(n for n in os.listdir(pool.folder) if n.lower().startswith(f"case{r}")) == [
            f"{stored}.preview.png", f"{stored}.safetensors"]
        assert store.resolve(f"CaSe{r}") == stored and store.get(f"case{r}").hash == answers[winners[0]][1]
        assert preview_color(store, stored) == color(winners[0], r)


def test_changes_in_one_process_are_seen_by_another_without_restart(pool):
    cfg = ServiceConfig(models_dir=pool.folder.parent / "models", identities_dir=pool.folder, device="cpu",
                        allow_download=False)
    service = HyperLoRAService(lambda: cfg)  # this process: a second WebUI
    writer, reader = 0, 1
    first = pool.run({writer: ("save", {"name": "bob", "seed": 1})})[writer]
    assert pool.run({reader: ("get", {"name": "bob"})})[reader] == first
    assert service.identities.get("bob").hash == first[1]
    stamp = os.stat(service.identities.store.path("bob")).st_mtime_ns
    second = pool.run({writer: ("save", {"name": "bob", "seed": 2, "overwrite": True})})[writer]
    assert second[0] == "ok" and second[1] != first[1]
    os.utime(service.identities.store.path("bob"), ns=(stamp, stamp))  # as on filesystems with coarse times
    assert pool.run({reader: ("get", {"name": "bob"})})[reader] == second  # same file size: no stale cache
    assert service.identities.get("BOB").hash == second[1]
    assert pool.run({writer: ("rename", {"old": "bob", "new": "Bobby"})})[writer] == ("ok", "Bobby")
    assert pool.run({reader: ("get", {"name": "bobby"})})[reader] == second
    kind, _ = pool.run({reader: ("get", {"name": "bob"})})[reader]
    assert kind == "UnknownIdentityError"  # the old name stops resolving
    with pytest.raises(KeyError):
        service.identities.get("bob")
    assert "no identity named 'bob'" in service.resolve([TagRequest("bob", 1.0)]).warnings[0]
    assert pool.run({writer: ("delete", {"name": "bobby"})})[writer] == ("ok", "Bobby")
    assert pool.run({reader: ("names", {})})[reader] == ("ok", [n for n in service.identities.store.names()])
    assert "Bobby" not in service.identities.store.names()
    assert pool.run({reader: ("get", {"name": "Bobby"})})[reader][0] == "UnknownIdentityError"


def test_a_kept_listing_sees_another_process_write_within_the_same_tick(pool):
    store = IdentityStore(pool.folder)  # this process: a WebUI whose Extra Networks page keeps the listing
    long_ago = time.time_ns() - 3600 * 10**9
    pool.folder.mkdir(parents=True, exist_ok=True)
    os.utime(pool.folder, ns=(long_ago, long_ago))
    before = store.names()
    assert "tick" not in before
    created = pool.run({0: ("save", {"name": "tick", "seed": 40})})[0]
    os.utime(pool.folder, ns=(long_ago, long_ago))  # the folder's mtime as it was: a change within one tick
    assert store.names() == sorted([*before, "tick"], key=str.lower) and store.get("TICK").hash == created[1]
    assert pool.run({1: ("rename", {"old": "tick", "new": "Tock"})})[1] == ("ok", "Tock")
    os.utime(pool.folder, ns=(long_ago, long_ago))
    assert "tick" not in store and store.get("tock").hash == created[1]
    assert pool.run({2: ("delete", {"name": "tock"})})[2] == ("ok", "Tock")
    os.utime(pool.folder, ns=(long_ago, long_ago))
    assert store.names() == before


def test_readers_polling_during_writes_see_only_complete_versions(pool):
    created = pool.run({0: ("save", {"name": "carol", "seed": 10})})[0]
    seeds = list(range(11, 31))
    answers = pool.run({0: ("save_many", {"name": "carol", "seeds": seeds}),
                        1: ("churn", {"prefix": "churn", "count": 10}),
                        2: ("poll", {"name": "carol"}), 3: ("poll", {"name": "carol"}),
                        4: ("poll_list", {}), 5: ("poll_list", {})}, stop_after=(0, 1))
    assert answers[1] == ("ok", 10)
    kind, written = answers[0]
    assert kind == "ok" and len(set(written)) == len(seeds)
    for i in (2, 3):
        kind, seen = answers[i]
        assert kind == "ok", seen
        assert seen["errors"] == [] and seen["missing"] == 0 and seen["polls"] > 0
        assert set(seen["seen"]) <= {created[1], *written}
        assert seen["final"] == written[-1]
    for i in (4, 5):
        kind, listed = answers[i]
        assert kind == "ok" and listed["problems"] == {}, listed  # in-progress temp files are never reported
        assert all(n == "carol" or n.lower().startswith(("churnnew", "churnold", "race", "case"))
                   for n in listed["names"])
    assert not files(pool.folder, "churn") and not [n for n in os.listdir(pool.folder) if n.endswith(".tmp")]


def test_racing_renames_creates_and_deletes_never_clobber(pool):
    store = IdentityStore(pool.folder)
    for r in range(3):
        ann, ben, cat, dan = (f"{n}{r}" for n in ("ann", "ben", "cat", "dan"))
        made = {n: pool.run({0: ("save", {"name": n, "seed": 500 + 10 * r + k, "color": color(k, r)})})[0][1]
                for k, n in enumerate((ann, ben))}
        made_color = {ann: color(0, r), ben: color(1, r)}
        answers = pool.run({0: ("rename", {"old": ann, "new": cat}), 1: ("rename", {"old": ben, "new": cat}),
                            2: ("save", {"name": cat, "seed": 600 + r, "color": color(2, r)}),
                            3: ("save", {"name": cat, "seed": 700 + r, "color": color(3, r)}),
                            4: ("rename", {"old": ann, "new": dan}), 5: ("delete", {"name": ann})})
        ok = {i for i, (kind, _) in answers.items() if kind == "ok"}
        for kind, message in answers.values():
            assert kind in ("ok", "FileExistsError", "UnknownIdentityError"), answers
            if kind == "FileExistsError":
                assert "already exists" in message and "choose another name" in message
        # one process gets the name; none only when the rename claimed it but lost ann to another process
        holders = ok & {0, 1, 2, 3}
        assert len(holders) == 1 or (not holders and ok & {4, 5}), answers
        assert len(ok & {0, 4, 5}) == 1, answers  # one process gets ann
        expected = {}  # name -> (hash, preview colour) that must be there now
        if 0 in ok:
            expected[cat] = (made[ann], made_color[ann])
        elif 4 in ok:
            expected[dan] = (made[ann], made_color[ann])
        expected.update({cat: (made[ben], made_color[ben])} if 1 in ok else {ben: (made[ben], made_color[ben])})
        for i in (2, 3):
            if i in ok:
                expected[cat] = (answers[i][1], color(i, r))
        good, bad = store.load_all()
        round_names = {n for n in good if n.endswith(str(r)) and n[:3] in ("ann", "ben", "cat", "dan")}
        assert bad == {} and round_names == set(expected), (answers, sorted(good))
        for name, (identity_hash, face) in expected.items():
            assert good[name].hash == identity_hash
            assert preview_color(store, name) == face, (name, answers)
        previews = {n[: -len(".preview.png")] for n in os.listdir(pool.folder) if n.endswith(".preview.png")}
        assert previews & {ann, ben, cat, dan} == set(expected)  # no orphan previews
