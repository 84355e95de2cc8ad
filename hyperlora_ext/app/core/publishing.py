"""``LoRAPublisher``: every identity also kept as an ordinary LoRA file, on request (setting, off by default).

With it on, identity ``NAME`` exists as ``<Lora folder>/HyperLoRA/hyperlora_NAME.safetensors``, a complete Lora
card (``identities.lora_card``: preview, sidecar with trigger words and weight), so every LoRA-aware tool sees
it: ``<lora:hyperlora_alice:0.8>`` works in Regional Prompter's regions, LoRA Block Weight and the X/Y/Z prompt
axes. The files follow the identities (``saved``, ``renamed``, ``deleted``: create, replace, mix, slider,
rename, delete) and are written atomically (several WebUI processes may share the folders).

Only files this extension published are ever replaced, renamed or deleted: they carry ``hyperlora.published``
in their header. A file of the user's with a published name (anywhere in the Lora folder: the host lists LoRAs
by file name) is never touched; that identity is then not published and the reason is reported. Turning the
setting off leaves the files in place.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager

import safetensors

from ...errors import HyperLoRAError
from ...files import path_in, unlink_quiet
from ...identities.identity import Identity
from ...identities.lora_card import sidecar_path
from .config import Progress, ServiceConfig, no_progress
from .identity_library import IdentityLibrary
from .lora_cache import LoRACache

log = logging.getLogger(__name__)
FOLDER = "HyperLoRA"
PREFIX = "hyperlora_"
MARKER_KEY = "hyperlora.published"
LORA_SUFFIXES = (".safetensors", ".pt", ".ckpt")  # what the hosts' Lora extensions list


class PublishError(HyperLoRAError):
    """An identity could not be published (a file of the user's in the way, a disk error)."""


def published_header(path: Path) -> dict[str, str] | None:
    """The header metadata of a LoRA file this extension published, or None (absent, unreadable, not ours)."""
    try:
        with safetensors.safe_open(str(path), "pt") as f:
            meta = dict(f.metadata() or {})
    except Exception:
        return None
    return meta if meta.get(MARKER_KEY) == "1" else None


@dataclass
class PublishStatus:
    """Where ``publish_all`` stands: identities ``done`` of ``total``, the one in hand, and problems."""

    running: bool = False
    done: int = 0
    total: int = 0
    current: str = ""
    problems: list[str] = field(default_factory=list)

    def text(self) -> str:
        if self.running:
            return f"Publishing identities as LoRA files: {self.done} of {self.total} ({self.current})"
        if not self.total:
            return ""
        tail = f"; {len(self.problems)} not published: {'; '.join(self.problems)}" if self.problems else ""
        return f"Published {self.done - len(self.problems)} of {self.total} identities as LoRA files{tail}"


class LoRAPublisher:
    """Keeps ``<lora_dir()>/HyperLoRA`` in step with the identity folder while ``publish_loras`` is on.

    ``gpu_lock``: held while an identity is expanded (``HostHooks.hold_gpu``: the host's queue lock, re-entrant
    per thread, since identity events come from actions that may hold it already); ``changed``: called after
    files were written or removed (the host re-reads its Lora folder)."""

    def __init__(self, config: Callable[[], ServiceConfig], library: IdentityLibrary, loras: LoRACache,
                 lora_dir: Callable[[], Path], gpu_lock: Callable[[], ContextManager] = nullcontext,
                 changed: Callable[[], None] = lambda: None) -> None:
        self._config = config
        self._library = library
        self._loras = loras
        self._lora_dir = lora_dir
        self._gpu_lock = gpu_lock
        self._changed = changed
        self._lock = threading.RLock()  # one publication at a time in this process
        self.status = PublishStatus()
        self.notes: dict[str, str] = {}  # identity name -> what the last change published (for messages)
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._config().publish_loras)

    @property
    def folder(self) -> Path:
        return Path(self._lora_dir()) / FOLDER

    def path_for(self, name: str) -> Path:
        """The published file of identity ``name`` (inside ``folder``, whatever the name)."""
        return path_in(self.folder, PREFIX + name, ".safetensors")

    def lora_name(self, name: str) -> str:
        """What ``<lora:...>`` calls identity ``name``'s published file."""
        return self.path_for(name).stem

    def published_files(self) -> list[Path]:
        """The LoRA files in ``folder`` that this extension published."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob(f"{PREFIX}*.safetensors") if published_header(p) is not None)

    # ---- one identity ------------------------------------------------------------------------
    def _in_the_way(self, path: Path) -> Path | None:
        """A LoRA file of the user's that the host would list under ``path``'s name, or None."""
        stem = path.stem.lower()
        for root, _dirs, files in os.walk(self._lora_dir()):
            for file in files:
                base, suffix = os.path.splitext(file)
                if base.lower() == stem and suffix.lower() in LORA_SUFFIXES:
                    found = Path(root) / file
                    if published_header(found) is None:
                        return found
        return None

    def publish(self, identity: Identity) -> Path:
        """Write (or bring up to date) ``identity``'s published file; ``PublishError`` when a file of the
        user's has its name. A file already published for this identity version is left as it is."""
        path = self.path_for(identity.name)
        with self._gpu_lock(), self._lock:  # always in this order (the GPU lock is re-entrant per thread)
            header = published_header(path)
            if header and header.get("hyperlora.identity_hash") == identity.hash and sidecar_path(path).exists():
                return path
            blocker = self._in_the_way(path)
            if blocker is not None:
                raise PublishError(f"{identity.name!r} is not published as a LoRA file: your file {blocker} has "
                                   f"the name {path.stem!r}; rename it to publish this identity")
            self._loras.save(identity, self.folder, path.stem, overwrite=True,
                             weight=self._config().default_weight, extra={"published": "1"})
        log.info("HyperLoRA: published %s as %s", identity.name, path)
        return path

    def unpublish(self, name: str, identity_hash: str | None = None) -> bool:
        """Remove ``name``'s published file, preview and sidecar if we published them (and, given
        ``identity_hash``, for that version: another process may have published a new one meanwhile)."""
        path = self.path_for(name)
        with self._lock:
            header = published_header(path)
            if header is None or (identity_hash and header.get("hyperlora.identity_hash") != identity_hash):
                return False
            for file in (path, path.with_name(path.stem + ".preview.png"), sidecar_path(path)):
                unlink_quiet(file)
        log.info("HyperLoRA: removed the published LoRA file %s", path)
        return True

    # ---- identity events -------------------------------------------------------------------------
    def saved(self, identity: Identity) -> str:
        """An identity was created, replaced, mixed or made a slider: a note for the user ("" when off)."""
        return self._event(lambda: self.publish(identity), identity.name)

    def renamed(self, old_name: str, old_hash: str, identity: Identity) -> str:
        def rename() -> None:
            if self.lora_name(old_name) != self.lora_name(identity.name):
                self.unpublish(old_name, old_hash)  # first: a case-only rename may be the same file
            self.publish(identity)
        return self._event(rename, identity.name)

    def deleted(self, name: str, identity_hash: str) -> str:
        return self._event(lambda: self.unpublish(name, identity_hash), name, removed=True)

    def _event(self, action: Callable[[], object], name: str, removed: bool = False) -> str:
        if not self.enabled:
            return ""
        try:
            action()
            note = ("" if removed else
                    f"LoRA file: <lora:{self.lora_name(name)}:{self._config().default_weight:g}>")
        except (HyperLoRAError, OSError, ValueError) as exc:
            log.warning("HyperLoRA: %s", exc)
            note = str(exc)
        finally:
            self._changed()
        self.notes[name] = note
        return note

    # ---- all identities ------------------------------------------------------------------------
    def publish_all(self, progress: Progress = no_progress) -> PublishStatus:
        """Publish every stored identity that is not published in its current version (the setting was
        turned on, or the WebUI started with it on); damaged identities and blocked names are reported."""
        status = self.status = PublishStatus(running=True)
        try:
            identities, problems = self._library.store.load_all()
            status.problems.extend(f"{name}: {problem}" for name, problem in problems.items())
            status.total = len(identities) + len(problems)
            status.done = len(problems)
            for name, identity in sorted(identities.items(), key=lambda item: item[0].lower()):
                status.current = name
                progress(status.done / max(status.total, 1), f"Publishing {name} ({status.done + 1} of "
                                                             f"{status.total})")
                try:
                    self.publish(identity)
                except (HyperLoRAError, OSError, ValueError) as exc:
                    status.problems.append(str(exc))
                status.done += 1
        finally:
            status.running = False
            status.current = ""
            self._changed()
        return status

    def start_publish_all(self) -> bool:
        """``publish_all`` in a background thread (not two at once); False when one is running or it is off."""
        with self._lock:
            if not self.enabled or (self._thread is not None and self._thread.is_alive()):
                return False
            self._thread = threading.Thread(target=self._publish_all_logged, name="hyperlora-publish", daemon=True)
            self._thread.start()
            return True

    def join(self, timeout: float | None = None) -> None:
        """Wait for a background ``publish_all`` (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _publish_all_logged(self) -> None:
        try:
            status = self.publish_all()
            log.info("HyperLoRA: %s", status.text())
        except Exception:
            log.exception("HyperLoRA: publishing the identities as LoRA files failed")
