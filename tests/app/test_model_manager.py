"""``ModelManager``: which checkpoint made an identity, missing files, cached inspections."""

import pytest
from people import ALICE

from hyperlora_ext import HyperLoRAError
from hyperlora_ext.app.service import HyperLoRAService, ServiceConfig
from hyperlora_ext.app.tags import (
    TagRequest,
)


def test_identity_from_other_weights_is_refused(service, alice, tmp_path, models_dir):
    alice.model_fingerprint = "0" * 16
    service.store.save(alice, "stranger")
    res = service.resolve([TagRequest("stranger", 1.0)])
    assert not res.weights and "re-create the identity" in res.warnings[0]


def test_missing_models_without_download_list_the_files(tmp_path):
    cfg = ServiceConfig(models_dir=tmp_path / "empty", device="cpu", allow_download=False)
    svc = HyperLoRAService(lambda: cfg)
    assert svc.variants() == ["sdxl_hyper_id_lora_v1_fidelity"]
    with pytest.raises(HyperLoRAError, match="missing"):
        svc.create_identity(ALICE, "alice")
    assert svc.store.names() == []
