"""``model.face_models``: insightface and CLIP as one object, independent of any hypernetwork, each
loaded on first use; new providers or detector size reload the analyzer only; room is made before
either goes to a GPU (the meta device stands in for one)."""

from __future__ import annotations

import torch
from people import ALICE

from hyperlora_ext.model.face_models import FaceModels, pack_bytes
from hyperlora_ext.model.precision import Precision

CPU32 = Precision(torch.device("cpu"), torch.float32, torch.float32)


def test_models_load_on_first_use_and_a_detector_change_keeps_clip(locations):
    faces = FaceModels(locations, CPU32, det_size=640)
    assert not faces.analyzer_loaded and not faces.clip_loaded
    first = faces.analyzer()
    clip = faces.clip_encoder()
    assert faces.analyzer() is first and faces.clip_encoder() is clip and faces.version == 0
    faces.configure(None, 640)  # the same settings: nothing reloads
    assert faces.analyzer() is first and faces.version == 0
    faces.configure(["CPUExecutionProvider"], 320)
    assert faces.version == 1 and not faces.analyzer_loaded and faces.clip_loaded
    second = faces.analyzer()
    assert second is not first and second.sizes[0] == 320 and faces.clip_encoder() is clip


def test_clip_features_are_the_penultimate_hidden_states(locations):
    faces = FaceModels(locations, CPU32)
    crop = ALICE[0].resize((64, 64))
    hidden = faces.clip_features([crop, crop])
    encoder = faces.clip_encoder()
    assert hidden.shape == (2, 17, encoder.hidden_size) and hidden.dtype == torch.float32
    full = encoder.model(pixel_values=encoder.pixel_values([crop]), output_hidden_states=True)
    torch.testing.assert_close(hidden[:1], full.hidden_states[-2])


def test_room_is_made_before_clip_and_the_analyzer_go_to_a_gpu(locations):
    seen = []
    faces = FaceModels(locations, Precision(torch.device("meta"), torch.float16, torch.float16),
                       providers=["CUDAExecutionProvider", "CPUExecutionProvider"], make_room=seen.append)
    faces.analyzer()  # ONNX Runtime without CUDA falls back to the CPU provider, with a warning
    assert seen == [pack_bytes(locations.antelopev2)] and seen[0] > 0
    encoder = faces.clip_encoder()
    assert next(encoder.model.parameters()).device.type == "meta"
    tensors = (*encoder.model.parameters(), *encoder.model.buffers())  # fp16 on the device; int ids stay int
    assert seen[1] == sum(t.numel() * (2 if t.is_floating_point() else t.element_size()) for t in tensors)
    steps = [(s.action, s.what, s.device) for s in faces.placement.record]
    assert steps == [("make room", "face analyzer", "CUDAExecutionProvider"), ("make room", "clip", "meta"),
                     ("load", "clip", "meta")]


def test_cpu_providers_need_no_room(locations):
    seen = []
    FaceModels(locations, CPU32, providers=["CPUExecutionProvider"], make_room=seen.append).analyzer()
    assert seen == []
