"""Passes other extensions run inside a generation (ADetailer's face passes): their identities reach
the infotext of the image they changed, per image, and nothing leaks into the next generation."""

import pytest
from host_shapes import Params, Processing
from people import ALICE, BOB

import hyperlora_ext
from hyperlora_ext.app.core.tags import Applied, parse_infotext
from hyperlora_ext.app.generation import inner_passes
from hyperlora_ext.app.generation.activation import resolve_params
from hyperlora_ext.app.generation.likeness_infotext import LIKENESS_KEY, annotate


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


# ---- a generation that raised (its postprocess never ran) -----------------------------------------
ALICE_APPLIED = Applied("alice", "a1" * 6, 0.8, 0.0, "tiny_id")
BOB_APPLIED = Applied("bob", "b2" * 6, 0.8, 0.0, "tiny_id")


def generation(p, passes=(), fail: bool = False) -> None:
    """The host's process_images(p) with our script: begin in process, the passes, end in
    postprocess; a generation that raises never reaches postprocess."""
    inner_passes.begin(p)
    for run_pass in passes:
        run_pass(p)
    if fail:
        raise RuntimeError("CUDA out of memory")
    inner_passes.end(p)


def failed_generation() -> None:
    with pytest.raises(RuntimeError):
        generation(Processing(prompts=["fails"]), fail=True)  # the host's frames (and p) are gone afterwards


def face_pass(applied: Applied, runs_our_script: bool = False, fail: bool = False):
    """ADetailer's pass for one face: a process_images of its own p inside the outer generation
    (which catches a failing pass and goes on with the next face)."""
    def run(outer) -> None:
        inner = Processing(prompts=["a face"])

        def passes(p) -> None:
            inner_passes.record(p, [applied])

        try:
            if runs_our_script:
                generation(inner, [passes], fail=fail)
            else:
                passes(inner)
                if fail:
                    raise RuntimeError("the face pass failed")
        except RuntimeError:
            pass
    return run


def test_a_generation_that_raised_leaves_nothing_behind():
    failed_generation()
    assert not inner_passes.record(Processing(prompts=["x"]), [ALICE_APPLIED])  # an ordinary pass, not an inner one
    outer = Processing(prompts=["two people"])
    generation(outer, [face_pass(ALICE_APPLIED)])  # begin stacks on nothing left over
    assert [a.name for a in inner_passes.take(outer)] == ["alice"]
    assert not inner_passes.record(Processing(prompts=["y"]), [BOB_APPLIED])


def test_a_face_pass_that_raised_does_not_swallow_the_next_faces():
    outer = Processing(prompts=["two people"])
    generation(outer, [face_pass(ALICE_APPLIED, runs_our_script=True, fail=True),  # a nested generation raised
                       face_pass(BOB_APPLIED)])
    assert [a.name for a in inner_passes.take(outer)] == ["bob"]  # alice's pass is its own generation
    assert not inner_passes.record(Processing(prompts=["z"]), [ALICE_APPLIED])


def test_a_nested_generation_running_our_script_is_its_own():
    outer = Processing(prompts=["two people"])

    def nested(p) -> None:
        inner = Processing(prompts=["a face"])
        generation(inner, [lambda q: inner_passes.record(q, [ALICE_APPLIED]),  # its own pass: not inner
                           face_pass(BOB_APPLIED)])  # a pass inside the nested one: inner to the nested
        assert [a.name for a in inner_passes.take(inner)] == ["bob"]
        inner_passes.record(Processing(prompts=["after"]), [ALICE_APPLIED])  # back in the outer generation

    generation(outer, [nested])
    assert [a.name for a in inner_passes.take(outer)] == ["alice"]
