"""The explicit first-use download from the Hugging Face hub (``download_models``).

Only the files asked for are fetched (``huggingface_hub.hf_hub_download`` into their folders; a
transfer cut off is tried again up to ``ATTEMPTS`` times, which huggingface_hub resumes with a byte
range from what it received, or restarts when the server ignores ranges).
Progress goes to the console bars and, per received chunk, to an optional callback. Every
downloaded file is checked against the hub's size and sha256 and its own structure before it is
kept: a damaged one is deleted and named in the error, never loaded. A pinned repository
(``model.locations.PINS``: the antelopev2 mirror) is read at its pinned commit, and a pinned file must
have the pinned size and sha256, on the hub before its download starts and on disk after it.
``huggingface_hub`` is imported
only when a download starts; the hub address is ``endpoint``, else ``$HF_ENDPOINT`` read at that
moment, else the hub's default.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from .errors import DownloadError
from .integrity import sha256_of, verify_file
from .model.locations import DEFAULT_VARIANT, HYPERLORA_REPO, PINS, FilePin, ModelLocations, RepoPin

if TYPE_CHECKING:
    from huggingface_hub.file_download import HfFileMetadata

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
_SHA256 = re.compile(r"[0-9a-f]{64}")
ATTEMPTS = 3  # per file; huggingface_hub resumes each from the bytes already received


@dataclass(frozen=True)
class RemoteFile:
    """``remote`` in hub repo ``repo`` (at commit ``revision``; default: the main branch), landing at
    ``local_dir / remote``; ``pin``: the size and sha256 it must have."""

    repo: str
    remote: str
    local_dir: Path
    revision: str | None = None
    pin: FilePin | None = None

    @property
    def path(self) -> Path:
        return self.local_dir / self.remote


def check_writable(folders: set[Path]) -> None:
    """Create each folder and write a temporary file there; ``DownloadError`` naming the first
    folder that cannot be written."""
    for folder in sorted(folders):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise DownloadError(
                f"cannot write to {folder} ({exc.strerror or exc}): the download needs a models folder it may "
                "write to; fix the folder's permissions or choose another models folder (WebUI: "
                "--hyperlora-models-dir or Settings -> HyperLoRA; CLI: --models-dir)") from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def fetch(files: list[RemoteFile], endpoint: str | None = None, on_progress: Progress | None = None,
          force: frozenset[Path] = frozenset()) -> list[Path]:
    """Download ``files`` (``force``: replace these even if present); returns their paths.

    Raises ``DownloadError`` when the hub cannot be reached, a file is not on it, a folder cannot
    be written or a downloaded file is damaged (deleted first)."""
    if not files:
        return []
    import huggingface_hub as hub
    from huggingface_hub import constants
    from huggingface_hub.utils import HfHubHTTPError
    from huggingface_hub.utils import tqdm as hub_tqdm

    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    check_writable({f.path.parent for f in files} | {f.local_dir for f in files})
    metas = {}
    for f in files:  # one HEAD each: sizes for the progress, sha256 for the check
        try:
            metas[f] = hub.get_hf_file_metadata(hub.hf_hub_url(f.repo, f.remote, revision=f.revision,
                                                               endpoint=endpoint))
        except HfHubHTTPError as exc:
            raise DownloadError(f"{f.remote} is not available from {f.repo} at {endpoint} ({_reason(exc)})") from exc
        except Exception as exc:
            raise DownloadError(f"cannot reach the Hugging Face hub at {endpoint} ({_reason(exc)}); check the "
                                "internet connection (or HF_ENDPOINT)") from exc
    for f in files:
        problem = _pin_problem(f, metas[f].size, _hub_sha256(metas[f]))
        if problem:
            raise DownloadError(f"{f.remote} from {f.repo} at {endpoint} {problem} on the hub; nothing was "
                                "downloaded. The hub's copy changed: report it (the pin is in "
                                "hyperlora_ext/model/locations.py)")
    total = sum(m.size or 0 for m in metas.values())
    report = on_progress or (lambda fraction, desc: None)
    state = {"done": 0, "current": 0, "index": 0}

    def show() -> None:
        i = state["index"]
        f = files[i]
        got = state["done"] + max(0, min(state["current"], metas[f].size or 0))
        report(got / total if total else i / len(files),
               f"Downloading {f.remote} ({i + 1}/{len(files)}): {got / 1e6:.1f} of {total / 1e6:.1f} MB")

    class Bar(hub_tqdm):  # the console bar, plus every chunk to the callback
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            state["current"] = int(kwargs.get("initial") or 0)  # a resumed transfer starts there
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            state["current"] += int(n or 0)
            show()
            return super().update(n)

    done = []
    for i, f in enumerate(files):
        state["index"], state["current"] = i, 0
        show()
        kwargs: dict[str, Any] = {"repo_id": f.repo, "filename": f.remote, "local_dir": str(f.local_dir),
                                  "endpoint": endpoint}
        if f.revision:
            kwargs["revision"] = f.revision
        if f.path in force:
            kwargs["force_download"] = True
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with _progress_bars(hub.hf_hub_download, Bar) as bar_kwargs:
                    local = Path(hub.hf_hub_download(**kwargs, **bar_kwargs))
                break
            except (HfHubHTTPError, PermissionError) as exc:  # an answer, not a broken transfer
                raise DownloadError(f"downloading {f.remote} from {f.repo} at {endpoint} failed "
                                    f"({_reason(exc)})") from exc
            except Exception as exc:  # connection lost mid-file: go on from what was received
                if attempt == ATTEMPTS:
                    raise DownloadError(f"downloading {f.remote} from {f.repo} at {endpoint} failed "
                                        f"{ATTEMPTS} times ({_reason(exc)}); run the download again "
                                        "(finished files are kept)") from exc
                state["current"] = 0
        problem = _problem(local, metas[f], f)
        if problem:
            local.unlink(missing_ok=True)
            raise DownloadError(f"{local}: the downloaded file {problem}; it was deleted and nothing was loaded. "
                                "Run the download again")
        state["done"] += metas[f].size or 0
        state["current"] = 0
        done.append(local)
    report(1.0, f"Downloaded {len(done)} file(s), {total / 1e6:.1f} MB")
    return done


_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _progress_bars(download: Callable, bar: type) -> Iterator[dict]:
    """Extra ``hf_hub_download`` arguments that send its progress bar through ``bar``: the
    ``tqdm_class`` parameter (huggingface_hub >= 1.0); older versions (the WebUIs ship 0.26 and
    0.36) take their bar class from ``file_download.tqdm``, which is swapped for the call."""
    if "tqdm_class" in inspect.signature(download).parameters:
        yield {"tqdm_class": bar}
        return
    from huggingface_hub import file_download

    original = getattr(file_download, "tqdm", None)  # huggingface_hub < 1.0 only
    if not isinstance(original, type) or not issubclass(bar, original):
        yield {}  # unknown layout: console bars only, progress per file
        return
    with _PATCH_LOCK:
        file_download.tqdm = bar  # type: ignore[attr-defined]  # huggingface_hub < 1.0 has it (checked above)
        try:
            yield {}
        finally:
            file_download.tqdm = original  # type: ignore[attr-defined]  # as above


def _hub_sha256(meta: HfFileMetadata) -> str | None:
    """The sha256 the hub gives for a file (the ETag of LFS files), or None."""
    etag = (meta.etag or "").strip('"')
    return etag if _SHA256.fullmatch(etag) else None


def _pin_problem(f: RemoteFile, size: int | None, sha256: str | None) -> str | None:
    """Why a file of ``size`` bytes and ``sha256`` is not ``f``'s pinned content, or None (also when
    ``f`` is not pinned, or a value is unknown)."""
    if f.pin is None:
        return None
    at = f" at commit {f.revision}" if f.revision else ""
    if size is not None and size != f.pin.size:
        return f"has {size} bytes where the pinned file{at} has {f.pin.size}"
    if sha256 is not None and sha256 != f.pin.sha256:
        return f"has sha256 {sha256} where the pinned file{at} has {f.pin.sha256}"
    return None


def _problem(path: Path, meta: HfFileMetadata, f: RemoteFile) -> str | None:
    """What is wrong with a downloaded file given the hub's metadata and ``f``'s pin, or None."""
    size = path.stat().st_size
    if meta.size is not None and size != meta.size:
        return f"has {size} bytes where the hub has {meta.size} (truncated)"
    expected = _hub_sha256(meta)
    digest = sha256_of(path) if expected or f.pin else None
    if expected and digest != expected:
        return "does not match the hub's sha256 (damaged in transfer)"
    pinned = _pin_problem(f, size, digest)
    if pinned:
        return pinned + " (not the file this version was made for)"
    return verify_file(path)


def _no_progress_bars() -> None:
    """Where huggingface_hub cannot switch its bars (very old versions)."""


def download_models(locations: ModelLocations, variant: str = DEFAULT_VARIANT, progress: bool = True,
                    on_progress: Progress | None = None, endpoint: str | None = None,
                    pins: Mapping[str, RepoPin] | None = None) -> list[Path]:
    """Download the missing (or damaged) files of ``variant`` from the Hugging Face hub; returns
    the new paths.

    Explicit only (never at import or install). ``progress=False`` hides the console bars;
    ``on_progress(fraction, text)`` is called for every received chunk. ``endpoint``: the hub
    address (default ``$HF_ENDPOINT``, else huggingface.co). ``pins``: repo -> ``RepoPin``
    (default ``model.locations.PINS``). Raises ``DownloadError`` (a ``MissingModelsError`` listing what
    is still missing) when offline, when a folder cannot be written, when a pinned file on the hub is
    not the pinned one, or when a downloaded file is damaged (it is deleted, never loaded).
    """
    pins = PINS if pins is None else pins
    damaged = {d / f for f, d, _, _ in locations.damaged_files(variant)}
    todo = []
    for name, folder, repo in locations.missing_files(variant) + [
            (f, d, r) for f, d, r, _ in locations.damaged_files(variant)]:
        pin = pins.get(repo)
        revision, file_pin = (pin.revision, pin.files.get(name)) if pin else (None, None)
        if repo == HYPERLORA_REPO:  # the hub repo holds one folder per variant
            todo.append(RemoteFile(repo, f"{variant}/{name}", folder.parent, revision, file_pin))
        else:
            todo.append(RemoteFile(repo, name, folder, revision, file_pin))
    disable_progress_bars: Callable[[], object] = _no_progress_bars  # a function, or a class in newer versions
    enable_progress_bars: Callable[[], object] = _no_progress_bars
    try:
        from huggingface_hub import utils as hub_utils

        disable_progress_bars, enable_progress_bars = hub_utils.disable_progress_bars, hub_utils.enable_progress_bars
    except (ImportError, AttributeError):  # very old huggingface_hub
        pass
    if not progress:
        disable_progress_bars()
    try:
        done = fetch(todo, endpoint, on_progress, frozenset(damaged))
    except DownloadError as exc:
        missing = locations.missing_files(variant)
        raise DownloadError(f"HyperLoRA download failed: {exc}\n{locations.listing(variant)}",
                            [(f, str(d)) for f, d, _ in missing]) from exc
    finally:
        if not progress:
            enable_progress_bars()
    for path in done:
        log.info("HyperLoRA: downloaded %s", path)
    return done
