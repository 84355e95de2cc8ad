"""The publishing tests' set-up (``tests/app/core/test_publishing.py``) and its worker process: a service whose
``publish_loras`` setting can be flipped, with its own Lora folder, as one WebUI process has."""

from __future__ import annotations

from pathlib import Path

from hyperlora_ext.app.core.config import ServiceConfig
from hyperlora_ext.app.core.host_hooks import HostHooks
from hyperlora_ext.app.core.service import HyperLoRAService
from hyperlora_ext.app.panel.panel import Panel


class Setup:
    """A service whose ``publish_loras`` setting can be flipped, with its Lora folder and GPU-lock counter."""

    def __init__(self, models_dir: Path, tmp_path: Path, publish: bool = True) -> None:
        self.models_dir, self.tmp_path = models_dir, tmp_path
        self.lora_dir = tmp_path / "Lora"
        self.publish = publish
        self.changes = 0
        self.service = HyperLoRAService(self.config)
        self.hooks = HostHooks(lora_dir=lambda: self.lora_dir, lora_saved=lambda p: None)
        self.publisher = self.service.publish_to(lambda: self.lora_dir, self.hooks.hold_gpu, self._changed)
        self.panel = Panel(self.service, self.hooks)

    def config(self):
        return ServiceConfig(models_dir=self.models_dir, identities_dir=self.tmp_path / "identities", device="cpu",
                             dtype="fp32", allow_download=False, publish_loras=self.publish, default_weight=0.8)

    def _changed(self) -> None:
        self.changes += 1

    def file(self, name: str) -> Path:
        return self.lora_dir / "HyperLoRA" / f"hyperlora_{name}.safetensors"


def publish_worker(models_dir: str, tmp_path: str, barrier, results) -> None:
    """One WebUI process publishing the stored identity "alice" as soon as every worker is ready."""
    setup = Setup(Path(models_dir), Path(tmp_path))
    identity = setup.service.identities.get("alice")
    barrier.wait(60)
    try:
        setup.publisher.publish(identity)
        results.put("ok")
    except Exception as exc:  # reported to the test
        results.put(f"{type(exc).__name__}: {exc}")
