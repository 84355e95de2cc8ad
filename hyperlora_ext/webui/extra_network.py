"""The ``hyperlora`` ExtraNetwork and what both host adapters share.

Both hosts keep their LoRA logic in a built-in extension whose ``networks`` module has a
``load_networks`` that resets the LoRA state; each adapter wraps it (with the WebUI's
``modules.patches``, undone on script reload) so our networks are re-applied after every
reset, whatever the order of the tags. Only importable inside a WebUI.
"""

from __future__ import annotations

from pathlib import Path

import networks  # the host's built-in Lora extension (A1111: Lora, Forge: sd_forge_lora)
from modules import extra_networks, patches

from ..app.activation import run_activation
from ..app.service import HyperLoRAService


class HostAdapter:
    """Subclasses define ``activate(p, params_list)`` (resolve tags, then ``sync``), ``sync()``
    (make the host's LoRA state carry exactly ``self.active``) and ``reset()``."""

    def __init__(self, service: HyperLoRAService) -> None:
        self.service = service
        self.active: list = []

    def activate(self, p, params_list) -> None:
        raise NotImplementedError

    def sync(self) -> None:
        raise NotImplementedError

    def clear(self) -> None:
        """Remove our networks; the host restores the original weights before the next use."""
        self.active = []
        self.sync()

    def load_networks_wrapper(self, original):
        def load_networks(*args, **kwargs):
            result = original(*args, **kwargs)
            self.sync()
            return result
        return load_networks

    def install(self) -> ExtraNetworkHyperLoRA:
        """Register the ExtraNetwork and wrap ``networks.load_networks`` (undone by ``uninstall``)."""
        if patches.original(__name__, networks, "load_networks") is not None:  # scripts reloaded
            patches.undo(__name__, networks, "load_networks")
        patches.patch(__name__, networks, "load_networks", self.load_networks_wrapper(networks.load_networks))
        extra = ExtraNetworkHyperLoRA(self)
        extra_networks.register_extra_network(extra)
        return extra

    def uninstall(self) -> None:
        patches.undo(__name__, networks, "load_networks")
        self.clear()

    def lora_saved(self, path: str | Path) -> None:
        """Make a newly written LoRA file known to the Lora extension (Lora tab, /sdapi/v1/loras)."""
        networks.update_available_networks_by_names([Path(path).stem])

    def free_memory(self, nbytes: int) -> None:
        """Make room on the GPU before the hypernetwork goes there (hosts with a memory manager)."""


class ExtraNetworkHyperLoRA(extra_networks.ExtraNetwork):
    """``<hyperlora:NAME:w[:b]>``: any failure becomes a comment and the generation continues."""

    def __init__(self, host: HostAdapter) -> None:
        super().__init__("hyperlora")
        self.host = host

    def activate(self, p, params_list) -> None:
        run_activation(p, params_list, self.host.activate, on_error=self.host.clear)

    def deactivate(self, p) -> None:
        pass
