"""A local HTTP server that speaks the Hugging Face hub's file protocol, for download tests.

``HEAD|GET /{repo}/resolve/{revision}/{path}`` with the headers ``huggingface_hub`` reads
(``X-Repo-Commit``, ``ETag`` / ``X-Linked-Etag`` = sha256 like LFS files, ``Content-Length`` /
``X-Linked-Size``) and byte ranges (206); ``X-Repo-Commit`` is the requested revision when that is a
commit hash (as the hub answers a pinned request), else ``COMMIT``. Faults can be injected per file:
close the connection after some bytes on the next GETs, ignore ``Range`` (answer 200 with the whole
file), or serve other bytes than the advertised sha256. Every request is logged. Loopback only; stops
with its context.

``release_files`` lays out a local model folder as the three official repos serve it. For a WebUI
(which may ask the hub for its own files too, e.g. the CLIP tokenizer from the CLIP repo),
``others_unavailable`` answers every file it does not serve with 503, so the host falls back to its
cache as when offline; ``bytes_per_second`` paces the transfers, so a download lasts long enough for
a UI to show its progress.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hyperlora_ext.model.locations import ANTELOPEV2_REPO, CLIP_REPO, HYPERLORA_REPO, ModelLocations
from hyperlora_ext.photos.faces import ANTELOPEV2_FILES

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_PATH = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


@dataclass
class Served:
    """One file in a repo: ``data`` as stored; ``sha256`` advertised (default: of ``data``)."""

    data: bytes
    sha256: str | None = None
    cut_after: int | None = None  # close the connection after this many body bytes ...
    cuts_left: int = 0  # ... on this many of the next GETs
    ignore_range: bool = False

    @property
    def etag(self) -> str:
        return self.sha256 or hashlib.sha256(self.data).hexdigest()


@dataclass
class Request:
    method: str
    repo: str
    file: str
    range: str | None
    revision: str | None = None  # as requested: a branch name or a commit hash


@dataclass
class HubServer:
    """``files[(repo, path)] = Served(...)``; ``url`` once started; ``log`` of every request."""

    files: dict[tuple[str, str], Served] = field(default_factory=dict)
    log: list[Request] = field(default_factory=list)
    others_unavailable: bool = False  # 503 for any file not served (else 404 EntryNotFound)
    bytes_per_second: float | None = None  # pace of every body (None: as fast as the socket)
    _server: ThreadingHTTPServer | None = None
    _connections: set = field(default_factory=set)

    def add(self, repo: str, path: str, data: bytes) -> Served:
        self.files[(repo, path)] = served = Served(data)
        return served

    def add_folder(self, repo: str, folder: Path, prefix: str = "") -> None:
        """Serve every file of ``folder`` (recursively) as ``prefix + relative path``."""
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                self.add(repo, prefix + p.relative_to(folder).as_posix(), p.read_bytes())

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def gets(self, file: str | None = None) -> list[Request]:
        """File downloads (GET .../resolve/...), optionally of one file; not the client's other calls."""
        return [r for r in self.log if r.method == "GET" and r.repo and (file is None or r.file == file)]

    def __enter__(self) -> HubServer:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def setup(self) -> None:
                super().setup()
                hub._connections.add(self.connection)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                m = _PATH.match(self.path.split("?")[0])
                rng = self.headers.get("Range")
                hub.log.append(Request(self.command, m["repo"] if m else "", m["file"] if m else self.path, rng,
                                       m["rev"] if m else None))
                commit = m["rev"] if m and re.fullmatch(r"[0-9a-f]{40}", m["rev"]) else COMMIT
                served = hub.files.get((m["repo"], m["file"])) if m else None
                if served is None and hub.others_unavailable:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if served is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("X-Repo-Commit", commit)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data, start, status = served.data, 0, 200
                if rng and body and not served.ignore_range:
                    start = int(re.match(r"bytes=(\d+)-", rng)[1])
                    status = 206
                self.send_response(status)
                self.send_header("X-Repo-Commit", commit)
                self.send_header("ETag", f'"{served.etag}"')
                self.send_header("X-Linked-Etag", f'"{served.etag}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                chunk = data[start:]
                if served.cuts_left > 0 and served.cut_after is not None:
                    served.cuts_left -= 1
                    self.wfile.write(chunk[: served.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._write(chunk)

            def _write(self, chunk: bytes, piece: int = 1 << 16) -> None:
                if not hub.bytes_per_second:
                    self.wfile.write(chunk)
                    return
                for i in range(0, len(chunk), piece):
                    part = chunk[i:i + piece]
                    self.wfile.write(part)
                    time.sleep(len(part) / hub.bytes_per_second)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        for conn in self._connections:  # kept-alive connections too: the server is really gone
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._connections.clear()


def release_files(locs: ModelLocations, variant: str, checkpoint: Path | None = None) -> dict[tuple[str, str], bytes]:
    """(repo, path) -> bytes: what the official repos serve for the models under ``locs`` (the HyperLoRA
    ``variant`` folder, or ``checkpoint`` instead of it; the CLIP model and processor; antelopev2)."""
    ckpt = checkpoint or locs.hyper_lora / variant
    files = {(HYPERLORA_REPO, f"{variant}/{p.name}"): p.read_bytes() for p in sorted(ckpt.iterdir()) if p.is_file()}
    files.update({(CLIP_REPO, n): (locs.clip_vit / n).read_bytes() for n in ("config.json", "model.safetensors")})
    files[(CLIP_REPO, "preprocessor_config.json")] = (locs.clip_processor / "preprocessor_config.json").read_bytes()
    files.update({(ANTELOPEV2_REPO, n): (locs.antelopev2 / n).read_bytes() for n in ANTELOPEV2_FILES})
    return files
