"""Photo-set check: leave-one-out similarity, flags, dropping flagged photos without a new face pass."""

import math

import numpy as np
import pytest
import torch
from face_pack import face_image

from hyperlora_ext import HyperLoRAError
from hyperlora_ext.cli import main
from hyperlora_ext.model.pipeline import predict_checked
from hyperlora_ext.photos.photo_check import FLAG_BELOW, check_embeddings

ALICE = [face_image(pattern=80, seed=s) for s in (1, 2, 3)]
STRANGER = face_image(pattern=-80, seed=9)


def test_leave_one_out_scores_in_closed_form():
    x, y = np.eye(512)[0], np.eye(512)[1]
    check = check_embeddings(["a", "b", "c", "odd"], np.stack([x, x, x, y]))
    sims = [p.similarity for p in check.photos]
    # x against normalise(x + x + y) = 2 / sqrt(5); y against x = 0
    assert sims == pytest.approx([2 / math.sqrt(5)] * 3 + [0.0], abs=1e-12)
    assert check.flagged == ("odd",) and check.threshold == FLAG_BELOW
    assert check.to_dict()["photos"][3] == {"name": "odd", "similarity": 0.0, "flagged": True}
    two = check_embeddings(["a", "b"], np.stack([x, (x + y) / math.sqrt(2)]))
    assert [p.similarity for p in two.photos] == pytest.approx([1 / math.sqrt(2)] * 2)
    assert not two.flagged and check_embeddings(["a"], x[None]).photos == ()
    assert check_embeddings(["a", "b"], np.stack([x, y]), threshold=-0.5).flagged == ()


def test_a_different_person_is_flagged_by_name(model):
    pred, check = predict_checked(model, ALICE + [STRANGER], names=["a1.png", "a2.png", "a3.png", "who.png"])
    assert [p.name for p in check.photos] == ["a1.png", "a2.png", "a3.png", "who.png"]
    assert check.flagged == ("who.png",)
    assert all(p.similarity > 0.8 for p in check.photos[:3]) and check.photos[3].similarity < FLAG_BELOW
    assert len(pred.faces) == 4  # without drop_flagged the identity keeps every photo


def test_drop_flagged_checks_the_faces_before_the_hypernetwork_runs(model):
    """One face pass: the check reads the faces found, and a flagged photo never reaches CLIP or the
    hypernetwork (its face is cached, its tokens are not)."""
    model.clear_cache()
    names = ["a1.png", "who.png", "a2.png", "a3.png"]
    pred, check = predict_checked(model, [ALICE[0], STRANGER, ALICE[1], ALICE[2]], names=names, drop_flagged=True)
    assert check.flagged == ("who.png",)
    assert pred.cache_hits == 0 and "who.png" in pred.skipped and "left out" in pred.skipped["who.png"]
    assert [f.digest for f in pred.faces] == list(pred.identity.source_digests) and len(pred.faces) == 3
    direct = model.predict(ALICE)
    assert direct.cache_hits == 3 and "hypernet" not in direct.timings
    assert torch.equal(pred.identity.tokens, direct.identity.tokens)
    stranger = model.predict([STRANGER])
    assert stranger.cache_hits == 1 and "faces" not in stranger.timings and "hypernet" in stranger.timings


def test_drop_flagged_needs_someone_to_keep(model):
    with pytest.raises(HyperLoRAError, match="every photo was flagged"):
        predict_checked(model, [ALICE[0], STRANGER], drop_flagged=True)
    pred, check = predict_checked(model, [ALICE[0], face_image(faces=[]), b"junk"], drop_flagged=True)
    assert check.photos == () and set(pred.skipped) == {"image", "image 3"} and len(pred.faces) == 1


def test_cli_predict_prints_and_drops(locations, tmp_path, capsys):
    paths = []
    for i, img in enumerate(ALICE + [STRANGER]):
        paths.append(tmp_path / f"p{i}.png")
        img.save(paths[-1])
    out = tmp_path / "alice.safetensors"
    argv = ["predict", *map(str, paths), "-o", str(out), "--variant", "tiny_id", "--models-dir", str(locations.root),
            "--device", "cpu", "--dtype", "fp32", "--drop-flagged"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    lines = [ln for ln in captured.out.splitlines() if ln.startswith("photo ")]
    assert len(lines) == 4 and "FLAGGED" in lines[3] and not any("FLAGGED" in ln for ln in lines[:3])
    assert "p3.png: left out" in captured.err and "from 3 image(s)" in captured.out
