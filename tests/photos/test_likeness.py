"""Reference embedding in identities, likeness scores against a direct cosine, one face per identity in
pictures of several people (the assignment, face numbers left to right), infotext form old and new."""

import numpy as np
import pytest
import torch
from face_pack import face_image
from hypothesis import given, settings
from hypothesis import strategies as st
from people import group_photo
from PIL import Image

from hyperlora_ext import Identity
from hyperlora_ext.files import safe_name
from hyperlora_ext.photos.likeness import (
    Face,
    LikenessScore,
    format_likeness,
    group_faces,
    likeness,
    parse_likeness,
    parse_likeness_scores,
)

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
    boxes, embeddings = model.face_models.analyzer().all_embeddings(Image.fromarray(image))
    # the same detections and embeddings as insightface's own pipeline (the synthetic detector
    # reports each blob a few times, like overlapping anchors)
    assert len(faces) == len(boxes) >= 2
    theirs = sorted((tuple(f.bbox.round(2)), f.normed_embedding) for f in faces)
    ours = sorted((tuple(b.round(2)), e) for b, e in zip(boxes, embeddings))
    for (tb, te), (ob, oe) in zip(theirs, ours):
        assert tb == ob
        np.testing.assert_allclose(oe, te, atol=1e-5)
    scores = likeness(model.face_models.analyzer(), image, {"alice": alice.identity, "bob": bob.identity})
    assert [s.name for s in scores] == ["alice", "bob"]
    for score, ident in zip(scores, (alice.identity, bob.identity)):
        ref = ident.embedding.double().numpy()
        ref /= np.linalg.norm(ref)
        direct = max(float(np.dot(f.normed_embedding, ref)) for f in faces)
        assert score.similarity == pytest.approx(direct, abs=1e-5)
    # each identity is matched to its own face: Alice left (face 1), Bob right (face 2)
    assert [s.face for s in scores] == [1, 2]
    assert scores[0].box[2] <= 320 <= scores[1].box[0]
    assert scores[0].similarity > 0.7 and scores[1].similarity > 0.7


def test_no_face_and_identities_without_embedding(model, people):
    alice, bob = people
    old = Identity(tokens=bob.identity.tokens, variant="tiny_id", model_fingerprint="x", name="old")
    scores = likeness(model.face_models.analyzer(), face_image(faces=[]), [alice.identity, old])
    assert scores == [LikenessScore("alice", None)]
    assert format_likeness(scores) == "alice no face"


def test_two_faces_two_identities_each_get_their_own_face(model, people):
    alice, bob = people
    image = group_photo((800, 400), [(200, 200, 160, 80), (600, 200, 160, -80)])  # Alice left, Bob right
    scores = likeness(model.face_models.analyzer(), image, [alice.identity, bob.identity])
    assert [(s.name, s.face) for s in scores] == [("alice", 1), ("bob", 2)]
    assert all(s.similarity > 0.9 for s in scores)
    assert scores[0].box[2] < 400 < scores[1].box[0]  # boxes in pixels: face 1 left of the middle
    a, b = (f"{s.similarity:.2f}" for s in scores)
    assert format_likeness(scores) == f"alice {a} (face 1), bob {b} (face 2)"


def test_swapped_positions_give_alice_face_2(model, people):
    alice, bob = people
    image = group_photo((800, 400), [(200, 200, 160, -80), (600, 200, 160, 80)])  # Bob left, Alice right
    scores = likeness(model.face_models.analyzer(), image, {"alice": alice.identity, "bob": bob.identity})
    assert [(s.name, s.face) for s in scores] == [("alice", 2), ("bob", 1)]  # the listed order is kept
    assert all(s.similarity > 0.9 for s in scores)
    assert scores[0].box[0] > 400 > scores[1].box[2]


@pytest.mark.parametrize("order", [("alice", "bob"), ("bob", "alice")])
def test_one_face_two_identities_the_other_gets_no_face(model, people, order):
    alice, bob = people
    named = {"alice": alice.identity, "bob": bob.identity}
    scores = likeness(model.face_models.analyzer(), ALICE[0], {n: named[n] for n in order})
    by_name = {s.name: s for s in scores}
    assert [s.name for s in scores] == list(order)
    assert by_name["alice"].face == 1 and by_name["alice"].similarity > 0.9
    assert by_name["bob"] == LikenessScore("bob", None)  # not the best face of each: Bob would share hers
    assert "bob no face" in format_likeness(scores)


def test_three_faces_one_identity(model, people):
    alice, _ = people
    image = group_photo((960, 400), [(160, 200, 150, -80), (480, 200, 150, 80), (800, 200, 150, 0)])
    faces = group_faces(*model.face_models.analyzer().all_embeddings(image))
    assert len(faces) == 3 and [f.box[0] < 320 * (i + 1) for i, f in enumerate(faces)] == [True] * 3
    (score,) = likeness(model.face_models.analyzer(), image, [alice.identity])
    assert score.face == 2 and score.similarity > 0.9 and score.box == faces[1].box  # hers, in the middle
    assert format_likeness([score]).endswith("(face 2)")


def test_assignment_beats_each_identitys_best_face(model):
    """A constructed case: "near" is a bit closer to face 1 than to face 2, "one" is face 1 itself.
    Best face per identity gives both face 1; taking them in order (near first) leaves "one" face 2;
    the assignment gives "one" face 1 and "near" face 2, the larger total."""
    image = group_photo((800, 400), [(200, 200, 160, 80), (600, 200, 160, -80)])
    f1, f2 = group_faces(*model.face_models.analyzer().all_embeddings(image))
    e1, e2 = f1.embeddings[0].astype(np.float64), f2.embeddings[0].astype(np.float64)
    near = (e1 + e2) / np.linalg.norm(e1 + e2) + 0.05 * e1

    def ident(name, emb):
        emb = torch.from_numpy(emb / np.linalg.norm(emb)).float()
        return Identity(tokens=torch.zeros(8, 4), variant="tiny_id", model_fingerprint="x", name=name, embedding=emb)

    identities = [ident("near", near), ident("one", e1)]
    refs = [i.unit_embedding().double().numpy() for i in identities]
    sims = np.array([[f.similarity(r) for f in (f1, f2)] for r in refs])
    assert sims[0, 0] > sims[0, 1] and sims[1, 0] > sims[1, 1]  # best face of each: face 1 for both
    greedy = sims[0, 0] + sims[1, 1]  # in order: near takes face 1, one gets what is left
    scores = likeness(model.face_models.analyzer(), image, identities)
    assert [(s.name, s.face) for s in scores] == [("near", 2), ("one", 1)]
    assert sum(s.similarity for s in scores) == pytest.approx(sims[0, 1] + sims[1, 0]) and \
        sum(s.similarity for s in scores) > greedy + 0.1


def test_group_faces_merges_overlapping_detections_only():
    emb = np.eye(4, 512, dtype=np.float32)
    boxes = np.array([[300, 0, 400, 100],  # best detection of the right face
                      [0, 0, 100, 100],  # the left face ...
                      [10, 10, 60, 60],  # ... again, smaller (inside it)
                      [330, 20, 420, 110]], dtype=np.float32)  # the right face again, shifted
    faces = group_faces(boxes, emb)
    assert [f.box for f in faces] == [(0, 0, 100, 100), (300, 0, 400, 100)]  # left to right, best box each
    assert [len(f.embeddings) for f in faces] == [2, 2]
    assert faces[1].similarity(np.eye(1, 512)[0]) == 1.0  # the best over its detections
    apart = group_faces(np.array([[0, 0, 100, 100], [60, 0, 160, 100]], np.float32), emb[:2])  # 40 % overlap
    assert len(apart) == 2 and group_faces(np.zeros((0, 4)), np.zeros((0, 512))) == []
    assert isinstance(faces[0], Face)


def test_format_and_parse_new_and_old_forms():
    scores = [LikenessScore("alice", 0.7149, 1), LikenessScore("bob smith", None), LikenessScore("c-3", -0.051, 12)]
    text = format_likeness(scores)
    assert text == "alice 0.71 (face 1), bob smith no face, c-3 -0.05 (face 12)"
    assert parse_likeness(text) == {"alice": 0.71, "bob smith": None, "c-3": -0.05}
    assert parse_likeness_scores(text) == [LikenessScore("alice", 0.71, 1), LikenessScore("bob smith", None),
                                           LikenessScore("c-3", -0.05, 12)]
    old = "alice 0.64, bob smith no face, c-3 -0.05"  # images made by earlier versions: no face numbers
    assert parse_likeness(old) == {"alice": 0.64, "bob smith": None, "c-3": -0.05}
    assert [s.face for s in parse_likeness_scores(old)] == [None, None, None]
    assert format_likeness([LikenessScore("alice", 0.6449)]) == "alice 0.64"  # no face number known
    assert parse_likeness('"alice 0.5 (face 2), bob 0.4 (face 1)"') == {"alice": 0.5, "bob": 0.4}  # quoted
    assert format_likeness([]) == "" and parse_likeness("") == {}
    for bad in ("alice: 0.5", "alice 0.5 (face x)", "alice 0.5 (face 1"):
        with pytest.raises(ValueError, match="not 'NAME SCORE"):
            parse_likeness(bad)


def test_score_json():
    assert LikenessScore("alice", 0.71234, 2, (10.04, 20.0, 110.0, 120.56)).to_dict() == \
        {"name": "alice", "score": 0.71234, "face": 2, "box": [10.0, 20.0, 110.0, 120.6]}
    assert LikenessScore("bob", None).to_dict() == {"name": "bob", "score": None, "face": None, "box": None}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=20), st.one_of(st.none(), st.floats(-1, 1)),
                          st.one_of(st.none(), st.integers(1, 99))), max_size=4))
def test_format_parse_round_trip_for_safe_names(items):
    scores, seen = [], set()
    for name, sim, face in items:
        try:
            name = safe_name(name)
        except ValueError:
            continue
        if name not in seen:
            seen.add(name)
            scores.append(LikenessScore(name, sim, None if sim is None else face))
    parsed = parse_likeness_scores(format_likeness(scores))
    assert [s.name for s in parsed] == [s.name for s in scores]
    for got, want in zip(parsed, scores):
        assert got.face == want.face
        assert got.similarity == (None if want.similarity is None else pytest.approx(want.similarity, abs=0.0051))
