"""``ModelManager``: which checkpoint made an identity, missing files, cached inspections."""

import os
import shutil

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


def test_inspections_are_cached_until_a_file_changes(service, alice, tmp_path):
    """Finding the model of an identity per generated image reads no weights: the checkpoint's
    inspection (which hashes samples of every weight file) is kept until a file of it changes."""
    models = service.models
    first = models.inspect("tiny_id")
    assert models.inspect("tiny_id") is first and models.model_for(alice) is models.model_for(alice)
    copy = models.locations.hyper_lora / "tiny_copy"
    shutil.copytree(models.locations.variant_dir("tiny_id"), copy)
    try:
        spec = models.inspect("tiny_copy")
        assert models.inspect("tiny_copy") is spec
        json_file = copy / "hyper_lora_modules.json"
        stat = json_file.stat()
        os.utime(json_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # replaced on disk
        again = models.inspect("tiny_copy")
        assert again is not spec and again.fingerprint == spec.fingerprint
    finally:
        shutil.rmtree(copy)
