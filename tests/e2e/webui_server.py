"""Start a real WebUI (A1111, Forge, reForge or Forge Classic) on the CPU with this extension installed, for e2e
tests.

Everything the run writes lives in a scratch ``--data-dir``: ``config.json`` (CPU-friendly
settings), ``extensions/`` (a link to this repository, plus ADetailer when given), the Lora
folder and our models folder. The checkout itself is not modified.

Environment (all optional except the checkout):
  HYPERLORA_E2E_A1111 / _FORGE / _REFORGE / _CLASSIC   WebUI checkout (with its repositories/), see e2e_hosts.py
  HYPERLORA_E2E_A1111_PYTHON / _FORGE_PYTHON / ...     its interpreter (default: <checkout>/venv/bin/python)
  HYPERLORA_E2E_SDXL      SDXL checkpoint; default: built from the A1111 checkout's sd_xl_base.yaml
                          into $HYPERLORA_E2E_CACHE (default ~/.cache/hyperlora-e2e)
  HYPERLORA_E2E_ADETAILER an ADetailer checkout to install beside us (with extensions/hyperlora-e2e-picture,
                          the two-people test's stand-in for a txt2img that drew two faces)
  HYPERLORA_E2E_REGIONAL_PROMPTER a Regional Prompter checkout (hako-mikan/sd-webui-regional-prompter) to install
                          beside us (the two-people tests)
  HYPERLORA_E2E_CONTROLNET a sd-webui-controlnet checkout, installed beside us (A1111) by the WebUIs that ask
                          for ControlNet (the Forge hosts have their own built in)
  HYPERLORA_E2E_CONTROLNET_MODEL  the random SDXL ControlNet file; built there when missing (default:
                          $HYPERLORA_E2E_CACHE/sdxl-controlnet-mid-random.safetensors)
  HYPERLORA_E2E_INSTANTID_MODEL  the random InstantID IP-Adapter (SDXL) file; built there when missing (default:
                          $HYPERLORA_E2E_CACHE/ip-adapter_instant_id_sdxl-random.safetensors, see instantid_model.py)
  HYPERLORA_E2E_DIFFUSERS_PYTHON  an interpreter with diffusers to build it (default: this one if it has
                          diffusers, else the Forge checkout's venv)
  HYPERLORA_E2E_LOCK      a file to hold an exclusive flock on while a WebUI runs (RAM)
  HF_HOME                 passed through (A1111 reads the CLIP-L tokenizer from the hub cache)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
from built_models import (
    INSTANTID_CONTROLNET,
    INSTANTID_IP_ADAPTER,
    controlnet_model,
    cpu_has_fast_bf16,
    instantid_model,
    sdxl_checkpoint,
)
from e2e_hosts import FORGE_HOSTS, HOSTS, checkout, interpreter, require

__all__ = ["HOSTS", "INSTANTID_CONTROLNET", "INSTANTID_IP_ADAPTER", "REPO", "WebUI", "controlnet_model", "require"]

REPO = Path(__file__).resolve().parents[2]
# The two-people test's stand-in for a txt2img that drew two faces (installed beside ADetailer only).
E2E_PICTURE = Path(__file__).resolve().parent / "extensions" / "hyperlora-e2e-picture"

REPO = Path(__file__).resolve().parents[2]
def _link(link: Path, target: Path) -> None:
    """``link`` -> ``target`` (kept when it is there already: a restarted WebUI reuses its data dir)."""
    if not link.is_symlink():
        link.symlink_to(target, target_is_directory=target.is_dir())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebUI:
    """One WebUI process; ``url`` answers once ``start`` returns. Use as a context manager."""

    def __init__(self, host: str, data_dir: Path, models_dir: Path, settings: dict | None = None, *,
                 controlnet: bool = False, instantid: bool = False, install_self: bool = True,
                 restartable: bool = False, env: dict[str, str | None] | None = None,
                 args: list[str] | None = None) -> None:
        """``controlnet``: install the host's ControlNet (A1111: $HYPERLORA_E2E_CONTROLNET) with the random SDXL
        ControlNet model; ``install_self=False``: start without this extension (to install it through the UI);
        ``instantid``: also (implies ``controlnet``) the random InstantID IP-Adapter and the random ControlNet under
        InstantID names, and the host's antelopev2 folder linked to the one in ``models_dir`` (a single copy,
        read by both); ``restartable``: run as under webui.sh (``SD_WEBUI_RESTART``), see ``wait_for_ui_restart``;
        ``env``: the process's environment on top of the suite's (offline, see ``start``); ``None`` removes one;
        ``args``: more command-line arguments for the WebUI."""
        root = checkout(host)
        if root is None:
            raise RuntimeError(f"{HOSTS[host]} is not set")
        self.host, self.root, self.data_dir, self.models_dir = host, root, data_dir, models_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lora_dir = data_dir / "models" / "Lora"
        self.log_path = data_dir / "webui.log"
        self.settings = settings or {}
        self.controlnet, self.install_self, self.restartable = controlnet or instantid, install_self, restartable
        self.instantid = instantid
        self.env_overrides = env or {}
        self.extra_args = list(args or [])
        self._log_offset = 0
        self.process: subprocess.Popen | None = None
        self._lock_file = None
        self.startup_seconds = 0.0

    def _prepare(self, write_config: bool = True) -> list[str]:
        ext = self.data_dir / "extensions"
        ext.mkdir(parents=True, exist_ok=True)
        self.lora_dir.mkdir(parents=True, exist_ok=True)
        if self.install_self:
            _link(ext / "sd-webui-hyperlora", REPO)
        adetailer = os.environ.get("HYPERLORA_E2E_ADETAILER")
        if adetailer:
            _link(ext / "adetailer", Path(adetailer))
            _link(ext / E2E_PICTURE.name, E2E_PICTURE)
        regional = os.environ.get("HYPERLORA_E2E_REGIONAL_PROMPTER")
        if regional:
            _link(ext / "sd-webui-regional-prompter", Path(regional))
        if self.controlnet:
            if self.host == "a1111":
                _link(ext / "sd-webui-controlnet", Path(os.environ["HYPERLORA_E2E_CONTROLNET"]))
            cn_dir = self.data_dir / "models" / "ControlNet"
            cn_dir.mkdir(parents=True, exist_ok=True)
            model = controlnet_model()
            _link(cn_dir / model.name, model)
            if self.instantid:
                _link(cn_dir / INSTANTID_CONTROLNET, model)
                _link(cn_dir / INSTANTID_IP_ADAPTER, instantid_model())
                # Where the host's InstantID looks for <root>/models/antelopev2: Forge's sd_forge_ipadapter and
                # forge_legacy_preprocessors, the WebUI's models/insightface (ours by default too);
                # sd-webui-controlnet, <annotator models path>/insightface (default inside the extension).
                root = self.data_dir / "models" / ("insightface" if self.host in FORGE_HOSTS else
                                                   "ControlNetPreprocessor/insightface")
                root.parent.mkdir(parents=True, exist_ok=True)
                _link(root, self.models_dir / "insightface")
        ckpt = sdxl_checkpoint()
        config = {"show_progress_type": "Approx cheap", "live_previews_enable": False, "samples_save": False,
                  "grid_save": False, "hyperlora_allow_download": False, **self.settings}
        common = ["--skip-prepare-environment", "--skip-install", "--skip-torch-cuda-test", "--skip-version-check",
                  "--no-download-sd-model", "--api", "--data-dir", str(self.data_dir), "--port", str(self.port),
                  "--lora-dir", str(self.lora_dir)]
        if (ext / "sd-webui-hyperlora").exists():  # its preload.py adds the flag; without us it is an error
            common += ["--hyperlora-models-dir", str(self.models_dir)]
        if self.host == "a1111":
            if cpu_has_fast_bf16():  # fp8 storage makes A1111 run the UNet under CPU bf16 autocast
                config["fp8_storage"] = "Enable for SDXL"  # keeps the LoRA backups of 560 layers small
            args = ["--use-cpu", "all", "--no-half", "--precision", "full", "--ckpt", str(ckpt)]
            if self.controlnet:  # its default is inside the (shared) checkout: annotator/downloads
                args += ["--controlnet-annotator-models-path", str(self.data_dir / "models" / "ControlNetPreprocessor")]
        else:
            ckpt_dir = self.data_dir / "ckpt"
            ckpt_dir.mkdir(exist_ok=True)
            _link(ckpt_dir / ckpt.name, ckpt)
            config.update(forge_preset="xl", sd_model_checkpoint=ckpt.name)
            # Forge serves /file= only from --gradio-allowed-path, whose default is the data dir: with a
            # --data-dir elsewhere every one of its own scripts (script.js, javascript/*.js) answers 403 and
            # the page runs without them. A default install has the checkout as its data dir: allow it.
            args = ["--always-cpu", "--ckpt-dir", str(ckpt_dir), "--gradio-allowed-path", str(self.root)]
            if adetailer:
                args.append("--ad-no-huggingface")
        if adetailer:
            # ADetailer reads its "Max tabs" setting from opts.data when it builds its UI. Forge Classic registers
            # extensions' settings only when it builds the Settings tab, after txt2img/img2img, so there ADetailer
            # builds 2 tabs (4 controls) and the API's default script arguments later get 4 (6 values): every
            # script after it reads shifted arguments (Classic's ControlNet fails its assertion, Never OOM turns
            # on). A saved value, as after any "Apply settings", avoids it (docs/troubleshooting.md).
            config.setdefault("ad_max_models", 4)
        if write_config:
            (self.data_dir / "config.json").write_text(json.dumps(config, indent=1))
        return [interpreter(self.host, self.root), "launch.py", *common, *args, *self.extra_args]

    def start(self, timeout: float = 900, write_config: bool = True) -> WebUI:
        command = self._prepare(write_config)
        lock = os.environ.get("HYPERLORA_E2E_LOCK")
        if lock and self._lock_file is None:  # a restart through the UI keeps holding it
            self._lock_file = open(lock, "a")  # noqa: SIM115 - held for the server's lifetime
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
               "YOLO_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
        if self.restartable:
            env["SD_WEBUI_RESTART"] = "1"
        env.pop("PYTHONPATH", None)
        for key, value in self.env_overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        t0 = time.monotonic()
        self._log_offset = self.log_mark()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        while time.monotonic() - t0 < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.host} exited with {self.process.returncode}:\n{self.log_tail()}")
            if self._ready():
                self.startup_seconds = time.monotonic() - t0
                return self
            time.sleep(2)
        self.stop()
        raise RuntimeError(f"{self.host} did not answer within {timeout} s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        """The API answers *and* the WebUI has finished starting: the API routes answer a little
        before the always-on scripts' default arguments exist (a request then fails in
        ``init_script_args``), so also wait for the "Startup time:" line both hosts print last."""
        try:
            if "Startup time:" not in self.log_text():
                return False
            return httpx.get(f"{self.url}/sdapi/v1/options", timeout=5).status_code == 200
        except (OSError, httpx.HTTPError):
            return False

    def log_text(self, since_start: bool = True) -> str:
        """The server log, from the latest start on (or all of it)."""
        return self.log_since(self._log_offset if since_start else 0)

    def log_mark(self) -> int:
        """The log's current end (bytes), for ``log_since``."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, mark: int) -> str:
        """What the server logged after ``log_mark()`` returned ``mark`` (across restarts: the file only grows)."""
        with open(self.log_path, "rb") as fh:
            fh.seek(mark)
            return fh.read().decode(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def restart(self) -> WebUI:
        """Stop the process and start a new one on the same data dir, models and port (what a user's
        restart does: every in-process cache is gone, the files stay)."""
        self.stop()
        return self.start()

    def wait_for_ui_restart(self, timeout: float = 300) -> WebUI:
        """Do what webui.sh does after the Extensions tab's "Apply and restart UI": the host writes
        ``<checkout>/tmp/restart`` and exits with 0; wait for that exit, remove the marker and start the same
        command again (same data dir, port and settings the WebUI saved; the lock stays held)."""
        if self.process is None:
            raise RuntimeError("not started")
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{self.host} did not exit within {timeout} s:\n{self.log_tail()}") from exc
        marker = self.root / "tmp" / "restart"
        requested = marker.exists()
        marker.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            marker.parent.rmdir()  # only if empty: the host made it for the marker
        if code != 0 or not requested:
            raise RuntimeError(f"{self.host} exited with {code}, restart requested: {requested}\n{self.log_tail()}")
        return self.start(write_config=False)

    def __enter__(self) -> WebUI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- API helpers -----------------------------------------------------------------------------
    def post(self, path: str, payload: dict, timeout: float = 900) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=payload, timeout=timeout)

    def get(self, path: str, timeout: float = 120) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=timeout)

    def delete(self, path: str, timeout: float = 120) -> httpx.Response:
        return httpx.delete(f"{self.url}{path}", timeout=timeout)
