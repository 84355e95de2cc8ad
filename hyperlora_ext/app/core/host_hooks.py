"""``HostHooks``: what the host lends the app layer besides the service.

The host adapter (``webui/host.py``) makes one and gives it to the panel (``panel.Panel``), the HTTP
API (``http.api.make_router``) and, through ``hold_gpu``, to publishing (``service.publish_to``):
the Lora folder, what to call after a LoRA file was written or removed (so the host lists it), the
lock that serialises GPU work with the host's generations, and why ``<hyperlora>`` tags are off on
this host. Tests give plain callables.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Iterator

from ...model.pipeline import Prediction
from ...photos.photo_check import PhotoCheck

WAIT_KEY = "wait for the WebUI"  # a timings entry: seconds spent waiting for the host's lock


@dataclass
class HostHooks:
    """What the panel and API need from the host: the Lora folder, a callback after a LoRA
    file was written (so the Lora tab lists it), the lock that serialises GPU work, and why
    ``<hyperlora>`` tags are off on this host (None when they work)."""

    lora_dir: Callable[[], Path]
    lora_saved: Callable[[Path], None]
    gpu_lock: Callable[[], ContextManager] = contextlib.nullcontext
    tags_off: str | None = None
    loras_changed: Callable[[], None] = lambda: None  # LoRA files were added or removed: the host re-reads them
    _held: threading.local = field(default_factory=threading.local, repr=False)

    @contextlib.contextmanager
    def hold_gpu(self) -> Iterator[None]:
        """``gpu_lock``, re-entrant per thread: a thread that holds it already goes on (the host's queue lock
        is not re-entrant, and publishing runs both inside a Create and on its own)."""
        if getattr(self._held, "depth", 0):
            self._held.depth += 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        with self.gpu_lock():
            self._held.depth = 1
            try:
                yield
            finally:
                self._held.depth = 0

    def create_waiting(self, create: Callable[[], tuple[Prediction, PhotoCheck]]) -> tuple[Prediction, PhotoCheck]:
        """Run ``create`` (a Create: ``service.create_checked``) under ``gpu_lock``; its prediction's
        timings then start with "wait for the WebUI", the seconds spent waiting for the lock (a
        generation, or on A1111 the SD model still loading after start-up)."""
        start = time.perf_counter()
        with self.hold_gpu():
            waited = time.perf_counter() - start
            pred, check = create()
        pred.timings = {WAIT_KEY: waited, **pred.timings}
        return pred, check
