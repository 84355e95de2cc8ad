"""``model.placement``: where parts rest and run, room before any transfer to an accelerator, blocking
copies to the CPU, precomputation in one place. Without a GPU the decisions are checked as plans (the
steps ``use`` carries out, recorded as it does) and, for transfers, on the meta device, which keeps
shapes and dtypes and stands in for an accelerator."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hyperlora_ext.model.hypernet import BasisBank, LayerShape
from hyperlora_ext.model.placement import (
    OFFLOAD_BELOW_BYTES,
    PRECOMPUTE_DEVICE,
    PRECOMPUTE_DTYPE,
    Placement,
    Step,
    decide_offload,
    is_accelerator,
    nbytes_of,
)

CUDA = torch.device("cuda")
NAMES = ("resampler", "id projector", "id bases", "base bases")


def parts() -> dict[str, torch.nn.Module | BasisBank]:
    """Real parts on the CPU: two small modules and two basis banks (fp16)."""
    return {"resampler": torch.nn.Linear(8, 8).half(), "id projector": torch.nn.LayerNorm(8).half(),
            "id bases": BasisBank([LayerShape(8, 16)], 4, 2, torch.float16),
            "base bases": BasisBank([LayerShape(8, 16)], 4, 1, torch.float16)}


def placement(device, offload: bool, asked: list | None = None) -> Placement:
    p = Placement(device, offload, None if asked is None else asked.append)
    for name, part in parts().items():
        p.add(name, part)
    return p


@pytest.mark.parametrize("device,policy,memory,expected", [
    ("cpu", "offload", None, False), ("meta", "offload", None, False), ("cuda", "resident", None, False),
    ("cuda", "offload", None, True), ("cuda", "auto", 8 << 30, True), ("cuda", "auto", 24 << 30, False),
])
def test_offload_only_on_cuda_by_policy_and_memory(device, policy, memory, expected):
    assert decide_offload(torch.device(device), policy, memory) is expected


@given(st.integers(min_value=0, max_value=1 << 40))
def test_auto_offloads_exactly_below_16_gib(memory):
    assert decide_offload(CUDA, "auto", memory) is (memory < OFFLOAD_BELOW_BYTES)


def test_bad_policy_names_the_choices():
    with pytest.raises(ValueError, match="auto, resident or offload, not 'sometimes'"):
        decide_offload(CUDA, "sometimes", 1)


def test_what_counts_as_an_accelerator():
    assert not is_accelerator("cpu") and not is_accelerator(torch.device("cpu"))
    assert is_accelerator(CUDA) and is_accelerator("meta") and is_accelerator("mps")
    assert is_accelerator("CUDAExecutionProvider") and not is_accelerator("CPUExecutionProvider")
    assert not Placement("cpu", offload=True).offload  # offloading from the CPU to the CPU means nothing


def test_an_offloaded_use_brings_only_its_parts_with_room_first_and_takes_them_back_blocking():
    """#26 A5, A7, C: what an offloaded CUDA model does for an expansion (the bases) and a prediction
    (the networks), as planned on a machine without a GPU."""
    p = placement(CUDA, offload=True)
    bases = p.nbytes("id bases", "base bases")
    assert p.store == torch.device("cpu") and bases == 4 * (8 + 16) * (2 + 1) * 2  # K x (in + out) x ranks x fp16
    assert p.plan_use("id bases", "base bases", "absent") == [
        Step("make room", "id bases+base bases", "cuda", nbytes=bases),
        Step("move", "id bases", "cuda", nbytes=p.nbytes("id bases"), blocking=False),
        Step("move", "base bases", "cuda", nbytes=p.nbytes("base bases"), blocking=False),
        Step("use", "id bases+base bases", "cuda"),
        Step("move", "id bases", "cpu", nbytes=p.nbytes("id bases"), blocking=True),
        Step("move", "base bases", "cpu", nbytes=p.nbytes("base bases"), blocking=True),
    ]
    assert {s.what for s in p.plan_use("resampler", "id projector") if s.action == "move"} == {
        "resampler", "id projector"}


def test_a_resident_use_moves_nothing():
    for device in (CUDA, torch.device("cpu")):
        assert placement(device, offload=False).plan_use(*NAMES) == [Step("use", "+".join(NAMES), str(device))]


@given(device=st.sampled_from(["cuda", "meta", "mps", "cpu"]), offload=st.booleans(),
       names=st.lists(st.sampled_from(NAMES), unique=True))
def test_every_plan_makes_room_before_a_transfer_and_never_copies_to_the_cpu_asynchronously(device, offload, names):
    p = placement(device, offload)
    steps = p.plan_use(*names)
    roomy = 0
    for step in steps:
        if step.action == "make room":
            roomy = step.nbytes
        elif step.action == "move" and is_accelerator(step.device):
            assert not step.blocking and step.nbytes <= roomy, steps
            roomy -= step.nbytes
        elif step.action == "move":
            assert step.blocking and step.device == "cpu", steps
    moved = [s.what for s in steps if s.action == "move"]
    assert moved == (2 * names if p.offload else []) and sorted(set(moved)) == sorted(moved[:len(names)])


def test_room_is_asked_while_the_part_is_still_on_the_cpu():
    """#26 A5 on a real transfer (the meta device as the accelerator): the host's hook runs before the
    module moves, for its bytes in the target dtype."""
    module = torch.nn.Linear(16, 16)
    seen = []
    p = Placement("meta", make_room=lambda n: seen.append((n, next(module.parameters()).device.type)))
    p.place("clip", module, torch.float16)
    assert seen == [((16 * 16 + 16) * 2, "cpu")] and module.weight.device.type == "meta"
    assert module.weight.dtype == torch.float16 and nbytes_of(module) == seen[0][0]
    assert [(s.action, s.what, s.device, s.dtype) for s in p.record] == [
        ("make room", "clip", "meta", ""), ("load", "clip", "meta", "float16")]


def test_uses_nest_and_record_once():
    p = placement("meta", offload=False)
    with p.use("id bases"), p.use("id bases", "resampler"):
        pass
    assert [s.what for s in p.record] == ["id bases", "id bases+resampler"]


@pytest.mark.parametrize("device,offload", [(CUDA, True), (CUDA, False), ("meta", False), ("cpu", False)])
def test_precomputation_runs_in_float32_on_the_cpu_wherever_the_parts_rest(device, offload):
    p, got = Placement(device, offload), []
    p.precompute("resampler", lambda d, t: got.append((d, t)))
    assert got == [(PRECOMPUTE_DEVICE, PRECOMPUTE_DTYPE)] == [(torch.device("cpu"), torch.float32)]
    assert list(p.record) == [Step("precompute", "resampler", "cpu", "float32")]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_an_offload_round_trip_on_a_gpu_leaves_nothing_pinned():
    """#26 A7 measured where a GPU exists: after an offloaded use every part is back in pageable
    memory (a non-blocking copy to the CPU would be pinned) and the same bytes came back."""
    made, p = parts(), Placement(CUDA, offload=True)
    for name, part in made.items():
        p.add(name, part)
    bank = made["id bases"]
    before = bank.groups[("down", 8)][1].clone()
    with p.use(*NAMES):
        assert bank.device.type == "cuda"
    stack = bank.groups[("down", 8)][1]
    assert stack.device.type == "cpu" and not stack.is_pinned() and torch.equal(stack, before)
