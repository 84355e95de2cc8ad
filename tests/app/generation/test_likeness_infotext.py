"""``HyperLoRA likeness`` in each image's infotext (``app.likeness_infotext``): one face per identity,
numbered left to right; infotexts of earlier versions (no face numbers) still parse."""

import dataclasses
import logging
import types

import pytest
from host_shapes import Params, Processing
from people import ALICE_PATTERNED as ALICE
from people import BOB_PATTERNED as BOB
from people import NO_FACE, group_photo

from hyperlora_ext.app.core.service import HyperLoRAService
from hyperlora_ext.app.generation.activation import resolve_params
from hyperlora_ext.app.generation.likeness_infotext import LIKENESS_KEY, annotate
from hyperlora_ext.app.panel.settings import service_config
from hyperlora_ext.photos.likeness import format_likeness, likeness, parse_likeness, parse_likeness_scores


@pytest.fixture
def people(service):
    alice = service.create_identity(ALICE, "alice", "tiny_id")
    bob = service.create_identity(BOB, "bob", "tiny_id")
    return alice.identity, bob.identity


def tagged(service, *names) -> Processing:
    params = [Params(n, "1") for n in names]
    p = Processing(extra_network_data={"hyperlora": params})
    assert resolve_params(service, p, params, is_sdxl=True).weights
    return p


def test_likeness_per_image_equals_the_core_score(service, people, model):
    alice, bob = people
    p = tagged(service, "alice", "bob")
    annotate(service, p, ALICE[0])
    first = p.extra_generation_params[LIKENESS_KEY]
    direct = likeness(model.face_models.analyzer(), ALICE[0], [alice, bob])
    assert first == format_likeness(direct) and list(parse_likeness(first)) == ["alice", "bob"]
    scores = parse_likeness(first)
    assert scores["alice"] > 0.8 and scores["bob"] is None  # one face: hers; Bob gets none
    assert first.startswith("alice 0.") and first.endswith(" (face 1), bob no face")
    annotate(service, p, BOB[0])  # the next image of the batch gets its own value
    scores = parse_likeness(p.extra_generation_params[LIKENESS_KEY])
    assert scores["bob"] > 0.8 and scores["alice"] is None
    annotate(service, p, NO_FACE)
    assert p.extra_generation_params[LIKENESS_KEY] == "alice no face, bob no face"
    assert not p.comments


@pytest.mark.parametrize("alice_x,faces", [(200, (1, 2)), (600, (2, 1))])
def test_two_people_each_scored_on_their_own_face(service, people, alice_x, faces):
    """Alice and Bob in one picture (as after ADetailer with one tag per face): each identity's entry
    names its own face, numbered left to right, wherever she stands."""
    image = group_photo((800, 400), [(alice_x, 200, 160, 80), (800 - alice_x, 200, 160, -80)])
    p = tagged(service, "alice", "bob")
    annotate(service, p, image)
    text = p.extra_generation_params[LIKENESS_KEY]
    parsed = parse_likeness_scores(text)
    assert [(s.name, s.face) for s in parsed] == [("alice", faces[0]), ("bob", faces[1])]
    assert all(s.similarity > 0.8 for s in parsed)
    assert text == ", ".join(f"{s.name} {s.similarity:.2f} (face {s.face})" for s in parsed)


def test_infotext_of_earlier_versions_still_parses():
    old = 'HyperLoRA likeness: "alice 0.64, bob no face"'.split(": ", 1)[1]  # no face numbers
    assert parse_likeness(old) == {"alice": 0.64, "bob": None}
    assert [(s.name, s.face) for s in parse_likeness_scores(old)] == [("alice", None), ("bob", None)]


def test_likeness_only_for_applied_identities_with_an_embedding(service, people):
    annotate(service, p := Processing(), ALICE[0])
    assert LIKENESS_KEY not in p.extra_generation_params  # no tag applied
    slider = service.mix("alice - bob", "ab")
    assert slider.is_slider and slider.embedding is None
    p = tagged(service, "ab")
    annotate(service, p, ALICE[0])
    assert LIKENESS_KEY not in p.extra_generation_params
    p = tagged(service, "ab", "alice")
    annotate(service, p, ALICE[0])
    assert list(parse_likeness(p.extra_generation_params[LIKENESS_KEY])) == ["alice"]
    next_batch = Processing()
    next_batch.__dict__.update(p.__dict__)
    resolve_params(service, next_batch, [], is_sdxl=True)  # a new batch without tags forgets them
    annotate(service, next_batch, ALICE[0])
    assert LIKENESS_KEY not in next_batch.extra_generation_params


def test_likeness_setting_off_and_errors_never_raise(models_dir, service, people, caplog):
    off_config = dataclasses.replace(service.config, likeness_infotext=False)
    off = HyperLoRAService(lambda: off_config)
    p = tagged(off, "alice")
    annotate(off, p, ALICE[0])
    assert LIKENESS_KEY not in p.extra_generation_params
    assert service_config(types.SimpleNamespace(hyperlora_likeness_infotext=False), None, models_dir) \
        .likeness_infotext is False
    assert service_config(None, None, models_dir).likeness_infotext is True
    p = tagged(service, "alice")
    with caplog.at_level(logging.ERROR):
        annotate(service, p, b"not an image")
    assert LIKENESS_KEY not in p.extra_generation_params
    assert "likeness not measured" in list(p.comments)[-1]
    assert "likeness not measured" in p.extra_generation_params["HyperLoRA warnings"]
