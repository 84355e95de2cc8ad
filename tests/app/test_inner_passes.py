"""Passes other extensions run inside a generation (ADetailer's face passes): their identities reach
the infotext of the image they changed, per image, and nothing leaks into the next generation."""

from host_shapes import Params, Processing
from people import ALICE, BOB

import hyperlora_ext
from hyperlora_ext.app import inner_passes
from hyperlora_ext.app.activation import resolve_params
from hyperlora_ext.app.likeness_infotext import LIKENESS_KEY, annotate
from hyperlora_ext.app.tags import parse_infotext


def activate(service, p, *names):
    params = [Params(n, "0.8") for n in names]
    p.extra_network_data = {"hyperlora": params}
    return resolve_params(service, p, params, is_sdxl=True)


def test_face_passes_reach_the_outer_image(service):
    alice = service.create_identity(ALICE, "alice", "tiny_id").identity
    bob = service.create_identity([BOB], "bob", "tiny_id").identity
    outer = Processing(prompts=["two people"])
    inner_passes.begin(outer)
    activate(service, outer)  # the generation itself applies nothing
    for name in ("alice", "bob"):  # ADetailer: one img2img pass per face, each its own p
        activate(service, Processing(prompts=["a face"]), name)
    annotate(service, outer, ALICE[0])
    params = outer.extra_generation_params
    passes = parse_infotext(params["HyperLoRA inner passes"])
    assert [(a.name, a.identity_hash, a.weight) for a in passes] == [("alice", alice.hash, 0.8),
                                                                      ("bob", bob.hash, 0.8)]
    assert params["HyperLoRA version"] == hyperlora_ext.__version__
    assert "HyperLoRA" not in params  # the outer pass itself applied none
    assert params[LIKENESS_KEY].startswith("alice ") and ", bob " in params[LIKENESS_KEY]
    annotate(service, outer, ALICE[0])  # the next image of the batch had no inner passes
    assert "HyperLoRA inner passes" not in outer.extra_generation_params
    inner_passes.end(outer)
    later = Processing(prompts=["x"])
    activate(service, later, "alice")  # no generation running: an ordinary pass, nothing recorded
    assert not inner_passes.record(later, [])


def test_the_generations_own_passes_are_not_inner(service):
    service.create_identity(ALICE, "alice", "tiny_id")
    p = Processing(prompts=["x"])
    inner_passes.begin(p)
    activate(service, p, "alice")
    p.is_hr_pass = True
    activate(service, p, "alice")  # its hires pass
    assert inner_passes.take(p) == []
    nested = Processing(prompts=["y"])
    inner_passes.begin(nested)  # an inner pass that runs our script too is a generation of its own
    assert not inner_passes.record(nested, [])
    inner_passes.end(nested)
    assert inner_passes.record(Processing(), [])  # back in the outer generation
    inner_passes.end(p)
