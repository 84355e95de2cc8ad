"""Reference embedding in identities, likeness scores against a direct cosine, infotext form."""

import numpy as np
import pytest
import torch
from face_pack import face_image
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hyperlora_ext import Identity
from hyperlora_ext.cli import main
from hyperlora_ext.files import safe_name
from hyperlora_ext.photos.likeness import LikenessScore, format_likeness, likeness, parse_likeness

ALICE = [face_image(pattern=80, seed=s) for s in (1, 2)]
BOB = [face_image(pattern=-80, seed=s) for s in (3, 4)]


@pytest.fixture(scope="module")
def people(model):
    model.clear_cache()
    alice = model.predict(ALICE, name="alice")
    bob = model.predict(BOB, name="bob")
    return alice, bob


def test_predict_stores_the_mean_of_the_normalised_embeddings(model, people, tmp_path):
    alice, _ = people
    emb = alice.identity.embedding
    want = np.mean([f.embedding for f in alice.faces], axis=0)
    assert emb.shape == (512,) and emb.dtype == torch.float32
    np.testing.assert_allclose(emb.numpy(), want, rtol=1e-6, atol=1e-7)
    assert float(emb.norm()) <= 1.0 + 1e-6
    two = model.predict([ALICE[0], BOB[0]])  # different people: the mean is clearly shorter than 1
    want = (two.faces[0].embedding + two.faces[1].embedding) / 2
    np.testing.assert_allclose(two.identity.embedding.numpy(), want, rtol=1e-6, atol=1e-7)
    assert float(two.identity.embedding.norm()) < 0.9  # stored as computed, not re-normalised
    assert float(alice.identity.unit_embedding().norm()) == pytest.approx(1.0, abs=1e-6)
    back = Identity.load(alice.identity.save(tmp_path / "alice.safetensors"))
    assert torch.equal(back.embedding, emb) and back.hash == alice.identity.hash


def independent_faces(locations, image):
    """Every face's normed embedding straight from insightface's own FaceAnalysis."""
    from insightface.app import FaceAnalysis

    pack = locations.antelopev2
    app = FaceAnalysis(name=str(pack), root=str(pack.parent), providers=["CPUExecutionProvider"],
                       allowed_modules=["detection", "recognition"])
    app.prepare(ctx_id=-1, det_size=(640, 640))
    return app.get(np.ascontiguousarray(np.asarray(image)[:, :, ::-1]))


def test_likeness_equals_direct_cosine(model, people, locations):
    alice, bob = people
    image = face_image((640, 400), faces=[(170, 200, 180), (470, 200, 180)])
    arr = np.asarray(image).astype(np.int16)  # left face gets Alice's pattern, right face Bob's
    arr[:, :320] = np.asarray(face_image((640, 400), faces=[(170, 200, 180)], pattern=80))[:, :320]
    arr[:, 320:] = np.asarray(face_image((640, 400), faces=[(470, 200, 180)], pattern=-80))[:, 320:]
    image = arr.astype(np.uint8)  # an (H, W, 3) array is accepted too
    faces = independent_faces(locations, image)
    boxes, embeddings = model.pipeline.face_analyzer().all_embeddings(Image.fromarray(image))
    # the same detections and embeddings as insightface's own pipeline (the synthetic detector
    # reports each blob a few times, like overlapping anchors)
    assert len(faces) == len(boxes) >= 2
    theirs = sorted((tuple(f.bbox.round(2)), f.normed_embedding) for f in faces)
    ours = sorted((tuple(b.round(2)), e) for b, e in zip(boxes, embeddings))
    for (tb, te), (ob, oe) in zip(theirs, ours):
        assert tb == ob
        np.testing.assert_allclose(oe, te, atol=1e-5)
    scores = likeness(model.pipeline.face_analyzer(), image, {"alice": alice.identity, "bob": bob.identity})
    assert [s.name for s in scores] == ["alice", "bob"]
    for score, ident in zip(scores, (alice.identity, bob.identity)):
        ref = ident.embedding.double().numpy()
        ref /= np.linalg.norm(ref)
        direct = max(float(np.dot(f.normed_embedding, ref)) for f in faces)
        assert score.similarity == pytest.approx(direct, abs=1e-5)
    # each identity's best face is its own: Alice left, Bob right
    assert boxes[scores[0].face][2] <= 320 <= boxes[scores[1].face][0]
    assert scores[0].similarity > 0.7 and scores[1].similarity > 0.7


def test_no_face_and_identities_without_embedding(model, people):
    alice, bob = people
    old = Identity(tokens=bob.identity.tokens, variant="tiny_id", model_fingerprint="x", name="old")
    scores = likeness(model.pipeline.face_analyzer(), face_image(faces=[]), [alice.identity, old])
    assert scores == [LikenessScore("alice", None)]
    assert format_likeness(scores) == "alice no face"
    one = likeness(model.pipeline.face_analyzer(), ALICE[0], [alice.identity, bob.identity])
    assert one[0].similarity > 0.9 and one[1].similarity < one[0].similarity - 0.3


def test_format_and_parse():
    scores = [LikenessScore("alice", 0.6449), LikenessScore("bob smith", None), LikenessScore("c-3", -0.051)]
    text = format_likeness(scores)
    assert text == "alice 0.64, bob smith no face, c-3 -0.05"
    assert parse_likeness(text) == {"alice": 0.64, "bob smith": None, "c-3": -0.05}
    assert format_likeness([]) == "" and parse_likeness("") == {}
    with pytest.raises(ValueError, match="not 'NAME SCORE'"):
        parse_likeness("alice: 0.5")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=20), st.one_of(st.none(), st.floats(-1, 1))), max_size=4))
def test_format_parse_round_trip_for_safe_names(items):
    scores, seen = [], set()
    for name, sim in items:
        try:
            name = safe_name(name)
        except ValueError:
            continue
        if name not in seen:
            seen.add(name)
            scores.append(LikenessScore(name, sim))
    parsed = parse_likeness(format_likeness(scores))
    assert list(parsed) == [s.name for s in scores]
    for s in scores:
        assert parsed[s.name] == (None if s.similarity is None else pytest.approx(s.similarity, abs=0.0051))


def test_cli_likeness(people, locations, tmp_path, capsys):
    alice, bob = people
    pa = alice.identity.save(tmp_path / "alice.hyperlora.safetensors")
    pb = bob.identity.save(tmp_path / "bob.safetensors")
    image = tmp_path / "gen.png"
    ALICE[0].save(image)
    assert main(["likeness", str(image), "--identity", str(pa), "--identity", str(pb),
                 "--models-dir", str(locations.root)]) == 0
    parsed = parse_likeness(capsys.readouterr().out.strip())
    assert list(parsed) == ["alice", "bob"] and parsed["alice"] > 0.9 and parsed["bob"] < parsed["alice"] - 0.3
