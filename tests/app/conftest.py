"""Fixtures of the host-independent WebUI layer's tests: a service on the tiny real models
(``tests/conftest.py``) with its own identity folder, and the panel over it."""

from __future__ import annotations

import pytest
from people import ALICE

from hyperlora_ext.app.core.host_hooks import HostHooks
from hyperlora_ext.app.core.service import HyperLoRAService, ServiceConfig
from hyperlora_ext.app.panel.panel import Panel


def service_config_for(models_dir, folder, **options) -> ServiceConfig:
    """A CPU / float32 config without downloads, identities in ``folder``."""
    return ServiceConfig(models_dir=models_dir, identities_dir=folder, device="cpu", dtype="fp32",
                         allow_download=False, **options)


@pytest.fixture
def service(models_dir, tmp_path) -> HyperLoRAService:
    cfg = service_config_for(models_dir, tmp_path / "identities")
    return HyperLoRAService(lambda: cfg)


@pytest.fixture
def panel(service, tmp_path) -> Panel:
    return Panel(service, HostHooks(lora_dir=lambda: tmp_path / "Lora", lora_saved=lambda p: None))


@pytest.fixture
def alice(service):
    """Identity ``alice`` of the tiny model, from two photos named a1.png and a2.png."""
    return service.create_identity(ALICE, "alice", "tiny_id", image_names=["a1.png", "a2.png"]).identity
