"""``HostHooks``: the host's GPU lock, re-entrant per thread, and the wait it adds to a Create's timings."""

import threading
from contextlib import contextmanager
from types import SimpleNamespace

from hyperlora_ext.app.core.host_hooks import WAIT_KEY, HostHooks


def test_hold_gpu_takes_the_hosts_lock_once_per_thread():
    lock = threading.Lock()  # like the host's queue lock: not re-entrant
    taken = []

    @contextmanager
    def gpu_lock():
        with lock:
            taken.append(threading.current_thread().name)
            yield

    hooks = HostHooks(lora_dir=lambda: None, lora_saved=lambda p: None, gpu_lock=gpu_lock)
    with hooks.hold_gpu():
        with hooks.hold_gpu():  # publishing inside a Create: goes on
            assert lock.locked()
        assert lock.locked()
        other = threading.Thread(target=lambda: hooks.hold_gpu().__enter__(), name="other")
        other.start()
        other.join(0.2)
        assert other.is_alive()  # another thread waits for the lock
    other.join(5)
    assert taken == ["MainThread", "other"]


def test_create_waiting_puts_the_wait_first_in_the_timings():
    hooks = HostHooks(lora_dir=lambda: None, lora_saved=lambda p: None)
    pred = SimpleNamespace(timings={"faces": 0.5})
    out, check = hooks.create_waiting(lambda: (pred, "check"))
    assert out is pred and check == "check"
    assert list(pred.timings) == [WAIT_KEY, "faces"] and pred.timings[WAIT_KEY] >= 0
