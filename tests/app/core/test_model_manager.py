"""``ModelManager``: which checkpoint made an identity, missing files, cached inspections."""

import os
import shutil

import pytest
from people import ALICE

from hyperlora_ext import HyperLoRAError
from hyperlora_ext.app.core.service import HyperLoRAService, ServiceConfig
from hyperlora_ext.app.core.tags import (
    TagRequest,
)


def test_identity_from_other_weights_is_refused(service, alice, tmp_path, models_dir):
    alice.model_fingerprint = "0" * 16
    service.identities.store.save(alice, "stranger")
    res = service.resolve([TagRequest("stranger", 1.0)])
    assert not res.weights and "re-create the identity" in res.warnings[0]


def test_missing_models_without_download_list_the_files(tmp_path):
    cfg = ServiceConfig(models_dir=tmp_path / "empty", device="cpu", allow_download=False)
    svc = HyperLoRAService(lambda: cfg)
    assert svc.models.variants() == ["sdxl_hyper_id_lora_v1_fidelity"]
    with pytest.raises(HyperLoRAError, match="missing"):
        svc.create_identity(ALICE, "alice")
    assert svc.identities.store.names() == []


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


# ---- #26 A5: room is made before anything goes to the GPU ----------------------------------------
# The meta device stands in for a GPU: tensors placed there take no memory and keep their shapes, so
# where every weight went and what the host was asked to free are both observable without one.
def weights(model) -> list:
    parts = [model.resampler, model.base_resampler, model.id_projector]
    tensors = [t for m in parts if m is not None for t in (*m.parameters(), *m.buffers())]
    return tensors + [s for bank in (model.id_bank, model.base_bank) if bank is not None
                      for _, s in bank.groups.values()]


def test_room_is_made_before_the_hypernetwork_loads_onto_the_device(models_dir, tmp_path):
    asked: list[int] = []
    cfg = ServiceConfig(models_dir=models_dir, identities_dir=tmp_path / "ids", device="meta", dtype="fp16",
                        offload="resident", allow_download=False)
    model = HyperLoRAService(lambda: cfg, free_memory=asked.append).models.model("tiny_id")
    assert {t.device.type for t in weights(model)} == {"meta"}
    size = sum(t.numel() * t.element_size() for t in weights(model))
    assert sum(asked) >= size, f"asked the host for {asked} bytes; the weights take {size}"
    record = list(model.placement.record)
    loads = [i for i, step in enumerate(record) if step.action == "load"]
    assert [record[i].what for i in loads] == ["resampler", "id projector", "id bases"]
    for i in loads:  # each part: room for its bytes right before it is allocated on the device
        room, load = record[i - 1], record[i]
        assert (room.action, room.what, room.device) == ("make room", load.what, "meta"), record
        assert room.nbytes == load.nbytes > 0
    assert sum(record[i].nbytes for i in loads) == size == model.placement.nbytes() == sum(asked)
    assert [(s.what, s.device, s.dtype) for s in record if s.action == "precompute"] == [
        ("resampler", "cpu", "float32")]  # #26 A6: in one place, whatever the device


def test_likeness_makes_room_before_the_face_models_go_to_the_gpu(models_dir, tmp_path, alice):
    """The face models on a GPU provider (ONNX Runtime without CUDA falls back to the CPU, with a
    warning): the host makes room first; likeness never loads the hypernetwork."""
    asked: list[int] = []
    cfg = ServiceConfig(models_dir=models_dir, identities_dir=tmp_path / "identities", device="cpu",
                        dtype="fp32", allow_download=False,
                        providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    service = HyperLoRAService(lambda: cfg, free_memory=asked.append)
    scores = service.likeness(ALICE[0], [alice])
    assert scores[0].similarity is not None and scores[0].similarity > 0.5
    assert asked and asked[0] > 0, "the face models went to the GPU provider without room made for them"
    assert service.models.loaded_model is None  # the 3 GB hypernetwork was never loaded


def test_a_detector_change_reloads_the_analyzer_and_never_the_hypernetwork(models_dir, tmp_path):
    """#26 C: one set of face models for every variant; new detector size or providers reload the
    analyzer only, a Create afterwards uses the new one."""
    settings = {"det_size": 640, "providers": None}

    def config() -> ServiceConfig:
        return ServiceConfig(models_dir=models_dir, identities_dir=tmp_path / "ids", device="cpu", dtype="fp32",
                             allow_download=False, **settings)

    service = HyperLoRAService(config)
    model = service.models.model("tiny_id")
    faces = model.face_models
    analyzer = faces.analyzer()
    assert service.models.face_models() is faces and service.models.model("tiny_base").face_models is faces
    settings.update(det_size=320, providers=("CPUExecutionProvider",))
    assert service.models.model("tiny_id") is not model  # tiny_base replaced it: one variant at a time
    model = service.models.model("tiny_id")
    assert model.face_models is faces and faces.det_size == 320 and not faces.analyzer_loaded
    service.create_identity(ALICE, "alice", "tiny_id")
    assert faces.analyzer() is not analyzer and faces.analyzer().sizes[0] == 320
    settings.update(det_size=640)
    assert service.models.model("tiny_id") is model and service.models.face_models() is faces
