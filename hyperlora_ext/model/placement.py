"""Where weights rest and where they run: ``Placement``, the one place that moves a model's parts
between the CPU and an accelerator. It records each decision as a ``Step``, so the order and the
choices can be checked on a machine without a GPU.

The rules:

* **Resting place.** Parts rest on the store device: the CPU when offloaded, else the compute device.
  ``decide_offload`` turns the policy ("auto", "resident", "offload") into that choice.
* **Room first.** Before any bytes go to an accelerator (a part loaded straight onto it, offloaded
  parts brought for a use, a change of policy, ONNX Runtime sessions on a GPU provider),
  ``make_room(bytes)`` (the host's memory manager, e.g. Forge's) is asked for exactly those bytes.
* **Copies to the CPU block.** Copies towards an accelerator may be asynchronous; copies back to the
  CPU never are. torch allocates the target of a non-blocking CUDA -> CPU copy in pinned memory
  (``_to_copy``), which its pinned-host cache keeps after the tensors are freed (about 3 GB of bases
  after an offloaded model is unloaded), and such a tensor may be read before it has landed.
* **Only what is used moves.** ``use(*names)`` brings the named parts (offload mode) and takes them
  back when the outermost use of them ends; uses nest, and one runs at a time (the placement's lock).
* **One place for precomputation.** Input-independent precomputations run in float32 on the CPU
  (``PRECOMPUTE_DEVICE``, ``PRECOMPUTE_DTYPE``), whatever the placement, and are stored in the part's
  dtype: the same weights give the same values offloaded or resident.

Any device but the CPU counts as an accelerator (CUDA, MPS, XPU; the meta device in the tests), and
so does any ONNX Runtime provider but the CPU's.
"""

from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Protocol, TypeVar, cast

import torch

if TYPE_CHECKING:  # annotations only: hypernet's banks are one kind of part
    from .hypernet import BasisBank

POLICIES = ("auto", "resident", "offload")
OFFLOAD_BELOW_BYTES = 16 << 30  # "auto" offloads on CUDA GPUs with less memory than this
PRECOMPUTE_DEVICE = torch.device("cpu")
PRECOMPUTE_DTYPE = torch.float32
CPU = torch.device("cpu")
RECORD_STEPS = 512  # the most recent steps kept in ``Placement.record``
M = TypeVar("M", bound=torch.nn.Module)


class Movable(Protocol):
    """A part ``Placement`` can move: an ``nn.Module`` or a ``hypernet.BasisBank``."""

    def to(self, device: torch.device, *, non_blocking: bool = False) -> object: ...


@dataclass(frozen=True)
class Step:
    """One decision: ``action`` ("make room", "load", "move", "use", "precompute") on ``what`` (a part,
    or parts joined by "+"), at ``device``; ``dtype`` and ``nbytes`` where they apply; ``blocking``:
    whether a copy waits until it has landed."""

    action: str
    what: str
    device: str
    dtype: str = ""
    nbytes: int = 0
    blocking: bool = True


def is_accelerator(where: torch.device | str) -> bool:
    """Any torch device but the CPU, or any ONNX Runtime provider name but the CPU's."""
    if isinstance(where, str) and where.endswith("ExecutionProvider"):
        return where != "CPUExecutionProvider"
    return torch.device(where).type != "cpu"


def decide_offload(device: torch.device, policy: str, total_memory: int | None = None) -> bool:
    """Whether weights computed on ``device`` rest on the CPU between uses: "offload" on a CUDA GPU;
    "auto" on a CUDA GPU with less than ``OFFLOAD_BELOW_BYTES`` (``total_memory`` bytes, read from the
    GPU when not given); never elsewhere. ``ValueError`` for an unknown policy."""
    if policy not in POLICIES:
        raise ValueError(f"offload must be auto, resident or offload, not {policy!r}")
    if torch.device(device).type != "cuda" or policy == "resident":
        return False
    if policy == "offload":
        return True
    if total_memory is None:
        total_memory = torch.cuda.get_device_properties(device).total_memory
    return total_memory < OFFLOAD_BELOW_BYTES


def nbytes_of(part: Movable) -> int:
    """Bytes of a part's tensors: a module's parameters and buffers, or a bank's ``nbytes``."""
    if isinstance(part, torch.nn.Module):
        return sum(t.numel() * t.element_size() for t in (*part.parameters(), *part.buffers()))
    return int(cast("BasisBank", part).nbytes)


class Placement:
    """The placement of one object's parts (the hypernetwork's, or the face models' CLIP).

    ``compute``: where the parts run; ``offload``: whether they rest on the CPU between uses (only
    meaningful for an accelerator); ``make_room(bytes)``: optional host hook, called before bytes go
    to an accelerator. ``record``: the latest ``Step`` s, oldest first.
    """

    def __init__(self, compute: torch.device | str, offload: bool = False,
                 make_room: Callable[[int], None] | None = None) -> None:
        self.compute = torch.device(compute)
        self.offload = bool(offload) and is_accelerator(self.compute)
        self._make_room = make_room
        self._parts: dict[str, list[Movable]] = {}
        self._users: dict[str, int] = {}
        self._lock = threading.RLock()
        self.record: deque[Step] = deque(maxlen=RECORD_STEPS)

    @property
    def store(self) -> torch.device:
        """Where the parts rest between uses."""
        return CPU if self.offload else self.compute

    def nbytes(self, *names: str) -> int:
        """Bytes of the named parts (all parts when none is named)."""
        return sum(nbytes_of(p) for n in (names or self._parts) for p in self._parts.get(n, []))

    def _step(self, action: str, what: str, device: torch.device | str, dtype: torch.dtype | None = None,
              nbytes: int = 0, blocking: bool = True) -> Step:
        return Step(action, what, str(device), str(dtype).removeprefix("torch.") if dtype else "", nbytes, blocking)

    def _room(self, what: str, nbytes: int, where: torch.device | str) -> list[Step]:
        return [self._step("make room", what, where, nbytes=nbytes)] if nbytes > 0 and is_accelerator(where) else []

    def _moves(self, names: list[str], device: torch.device) -> list[Step]:
        """Room for the named parts' bytes (an accelerator only), then one copy each; copies block
        unless they go to an accelerator (never into pinned memory)."""
        if not names:
            return []
        steps = self._room("+".join(names), self.nbytes(*names), device)
        return steps + [self._step("move", n, device, nbytes=self.nbytes(n), blocking=not is_accelerator(device))
                        for n in names]

    def _run(self, steps: list[Step]) -> None:
        """Carry out ``steps`` in order and record each: make room (the host hook), move (the parts)."""
        for step in steps:
            if step.action == "make room" and self._make_room is not None:
                self._make_room(step.nbytes)
            elif step.action == "move":
                for part in self._parts[step.what]:
                    part.to(torch.device(step.device), non_blocking=not step.blocking)
            self.record.append(step)

    def make_room(self, what: str, nbytes: int, where: torch.device | str) -> None:
        """Ask the host for ``nbytes`` before they go to ``where`` (nothing for the CPU)."""
        self._run(self._room(what, nbytes, where))

    def load_device(self, what: str, nbytes: int, dtype: torch.dtype) -> torch.device:
        """The device a part about to be allocated goes to (``store``); room is made there first.
        Register the part with ``add`` once it is loaded."""
        with self._lock:
            self._run(self._room(what, nbytes, self.store) + [self._step("load", what, self.store, dtype, nbytes)])
            return self.store

    def place(self, what: str, part: M, dtype: torch.dtype) -> M:
        """Move a module loaded on the CPU to ``store`` in ``dtype`` (room first) and register it."""
        size = sum(t.numel() * (dtype.itemsize if t.is_floating_point() else t.element_size())
                   for t in (*part.parameters(), *part.buffers()))
        device = self.load_device(what, size, dtype)
        part.to(device, dtype, non_blocking=is_accelerator(device))
        self.add(what, part)
        return part

    def add(self, what: str, part: Movable) -> None:
        """Register ``part`` (already on ``store``) under ``what``; ``use`` and ``set_offload`` move it."""
        with self._lock:
            self._parts.setdefault(what, []).append(part)

    def precompute(self, what: str, run: Callable[[torch.device, torch.dtype], None]) -> None:
        """``run(PRECOMPUTE_DEVICE, PRECOMPUTE_DTYPE)``: a precomputation in the one place for it."""
        self.record.append(self._step("precompute", what, PRECOMPUTE_DEVICE, PRECOMPUTE_DTYPE))
        run(PRECOMPUTE_DEVICE, PRECOMPUTE_DTYPE)

    def plan_use(self, *names: str) -> list[Step]:
        """The steps of a use of the named parts starting now: the moves that bring them (offload mode,
        those not already in use; room first), the use, and the moves taking them back to the CPU
        when it ends. Names of parts this object does not have are left out."""
        names = tuple(n for n in names if n in self._parts)
        bring = [n for n in names if self.offload and not self._users.get(n)]
        return [*self._moves(bring, self.compute), self._step("use", "+".join(names), self.compute),
                *self._moves(bring, CPU)]

    @contextmanager
    def use(self, *names: str) -> Iterator[None]:
        """Hold the lock while the block runs with the named parts on ``compute``: carries out
        ``plan_use`` (its moves back after the block, also after an exception). Uses nest."""
        with self._lock:
            steps = self.plan_use(*names)
            at = next(i for i, step in enumerate(steps) if step.action == "use")
            used = [n for n in names if n in self._parts]
            self._run(steps[:at + 1] if used else steps[:at])
            for n in used:
                self._users[n] = self._users.get(n, 0) + 1
            try:
                yield
            finally:
                for n in used:
                    self._users[n] -= 1
                self._run(steps[at + 1:])
                if len(steps) > at + 1 and self.compute.type == "cuda":
                    torch.cuda.empty_cache()

    def set_offload(self, offload: bool) -> None:
        """Change where the parts rest; moves them at once (room first when they go to the device)."""
        with self._lock:
            offload = bool(offload) and is_accelerator(self.compute)
            if offload == self.offload:
                return
            self.offload = offload
            self._run(self._moves([n for n in self._parts if not self._users.get(n)], self.store))
            if offload and self.compute.type == "cuda":
                torch.cuda.empty_cache()
