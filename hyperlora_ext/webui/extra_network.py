"""The ``hyperlora`` ExtraNetwork and what every host adapter shares.

Each host keeps its LoRA logic in a built-in extension whose ``networks`` module has a
``load_networks`` that resets the LoRA state; each adapter wraps it (with the WebUI's
``modules.patches``, undone on script reload) so our LoRAs are re-applied after every reset,
whatever the order of the tags. The state an adapter keeps (``active``) lives from one
activation to the next: it is dropped when a generation starts (``reset`` from the Script's
``process``), when a generation that used tags ends (``deactivate``), and when the loaded model is
not the one it was resolved for (a checkpoint switch). Nothing here ever raises into the host: a
failure inside the wrapper becomes a comment on the next activation's ``p``.
Only importable inside a WebUI (``modules``).
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Generic, Sequence, TypeVar

from modules import extra_networks, patches

from ..app.core.service import HyperLoRAService
from ..app.generation.activation import run_activation
from ..app.generation.comments import comment
from ..app.generation.processing import ExtraNetworkParams, Processing

log = logging.getLogger(__name__)


Active = TypeVar("Active")  # what one applied HyperLoRA is on a host: a Network, (strength, weights)...


class HostAdapter(Generic[Active]):
    """Base of the three adapters (A1111, new Forge, ``ldm_patched``). Subclasses define
    ``current_model()`` (the loaded SD model), ``activate(p, params_list)`` (resolve this pass's tags,
    fill ``active``, call ``bind`` and ``sync``) and ``sync()`` (make the host's LoRA state carry
    exactly ``active``). ``networks``: the host's Lora extension module. ``Active``: what ``active``
    holds, one type per adapter (its base class says which)."""

    active: list[Active]

    def __init__(self, service: HyperLoRAService, networks: ModuleType) -> None:
        self.service = service
        self.networks = networks
        self.active = []
        self._model: weakref.ref | None = None  # the SD model ``active`` was resolved for
        self._problems: list[str] = []  # failures of the wrapper, told at the next activation

    # ---- what subclasses provide -----------------------------------------------------------
    def current_model(self) -> Any:
        raise NotImplementedError

    def activate(self, p: Processing, params_list: Sequence[ExtraNetworkParams]) -> None:
        raise NotImplementedError

    def sync(self) -> None:
        raise NotImplementedError

    # ---- state -------------------------------------------------------------------------------
    def bind(self) -> None:
        """Remember that ``active`` was resolved for the model loaded now."""
        model = self.current_model()
        self._model = weakref.ref(model) if model is not None else None

    def _stale(self) -> bool:
        return self._model is None or self._model() is not self.current_model()

    def reset(self) -> None:
        """Drop our LoRAs (a generation starts or ends); the host restores its weights before the next use."""
        self.active = []
        self.sync_safely()

    def sync_safely(self) -> None:
        """``sync``, but never raising: LoRAs resolved for another model are dropped first, and on an
        error ours are removed and the problem is kept for the next activation's comments."""
        try:
            if self.active and self._stale():
                log.info("HyperLoRA: the SD model changed since the last activation; its LoRAs are dropped")
                self.active = []
            self.sync()
        except Exception as exc:
            log.exception("HyperLoRA: re-applying the LoRAs failed")
            self._problems.append(f"HyperLoRA: removed after an error while the WebUI re-applied its LoRAs "
                                  f"({type(exc).__name__}: {exc})")
            self.active = []
            try:
                self.sync()
            except Exception:
                log.exception("HyperLoRA: removing the LoRAs after an error failed")

    def tell_problems(self, p: Processing) -> None:
        """Put the wrapper's failures since the last activation into ``p``'s comments and infotext."""
        problems, self._problems = self._problems, []
        for text in problems:
            comment(p, text)

    # ---- the host's Lora extension -------------------------------------------------------------
    def load_networks_wrapper(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def load_networks(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            self.sync_safely()
            return result
        return load_networks

    def install(self) -> ExtraNetworkHyperLoRA:
        """Register the ExtraNetwork and wrap ``networks.load_networks`` (undone by ``uninstall``)."""
        networks = self.networks
        if patches.original(__name__, networks, "load_networks") is not None:  # scripts reloaded
            patches.undo(__name__, networks, "load_networks")
        patches.patch(__name__, networks, "load_networks", self.load_networks_wrapper(networks.load_networks))
        extra = ExtraNetworkHyperLoRA(self)
        extra_networks.register_extra_network(extra)
        return extra

    def uninstall(self) -> None:
        patches.undo(__name__, self.networks, "load_networks")
        self.reset()

    def lora_saved(self, path: str | Path) -> None:
        """Make a newly written LoRA file known to the Lora extension (Lora tab, /sdapi/v1/loras):
        ``update_available_networks_by_names`` where the host has it, else a full re-scan (Forge Classic)."""
        update = getattr(self.networks, "update_available_networks_by_names", None)
        if update is not None:
            update([Path(path).stem])
        else:
            self.networks.list_available_networks()

    def loras_changed(self) -> None:
        """LoRA files were added or removed in the Lora folder: the Lora extension lists its folder again."""
        self.networks.list_available_networks()

    def free_memory(self, nbytes: int) -> None:
        """Make room on the GPU before the hypernetwork goes there (hosts with a memory manager)."""


class ExtraNetworkHyperLoRA(extra_networks.ExtraNetwork):
    """``<hyperlora:NAME:w[:b]>``: any failure becomes a comment and the generation continues."""

    def __init__(self, host: HostAdapter[Any]) -> None:
        super().__init__("hyperlora")
        self.host = host

    def activate(self, p: Processing, params_list: Sequence[ExtraNetworkParams]) -> None:
        self.host.tell_problems(p)
        run_activation(p, params_list, self.host.activate, on_error=self.host.reset)

    def deactivate(self, p: Processing) -> None:
        self.host.reset()


class ExtraNetworkTagsOff(extra_networks.ExtraNetwork):
    """The ``hyperlora`` extra network where no adapter fits the host: each pass with tags gets a
    warning saying why they were skipped (instead of the host dropping them silently)."""

    def __init__(self, reason: str) -> None:
        super().__init__("hyperlora")
        self.reason = reason

    def activate(self, p: Processing, params_list: Sequence[ExtraNetworkParams]) -> None:
        if params_list:
            comment(p, f"HyperLoRA: tags are off on this WebUI ({self.reason}); "
                       f"{len(params_list)} tag(s) skipped")

    def deactivate(self, p: Processing) -> None:
        pass
