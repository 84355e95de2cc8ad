"""``GET /hyperlora/ui/names`` and ``/hyperlora/ui/help`` (``app.names_route``)."""

import dataclasses

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from people import ALICE, BOB

from hyperlora_ext.app.core.service import HyperLoRAService
from hyperlora_ext.app.http.names_route import HELP_PATH, PATH, add_names_route, names_payload
from hyperlora_ext.app.panel import help as panel_help
from hyperlora_ext.app.panel.panel import Panel


@pytest.fixture
def service(service):
    """The service with a default weight other than the built-in 0.85 (the route must report it)."""
    config = dataclasses.replace(service.config, default_weight=0.7)
    return HyperLoRAService(lambda: config)


def test_names_route_lists_the_stored_names_and_the_default_weight(service):
    panel = Panel(service, hooks=None)
    app = FastAPI()

    def weight() -> float:
        return service.config.default_weight

    add_names_route(app, panel.names, weight, panel_help.HELP)
    add_names_route(app, panel.names, weight, panel_help.HELP)  # a second start-up call: no-op
    assert sum(getattr(r, "path", None) == PATH for r in app.routes) == 1
    client = TestClient(app)
    assert client.get(PATH).json() == {"names": [], "weight": 0.7}
    service.create_identity(ALICE, "alice", "tiny_id")
    service.create_identity([BOB], "Bob", "tiny_id")
    assert client.get(PATH).json() == {"names": ["alice", "Bob"], "weight": 0.7}  # read on every call
    assert client.get(HELP_PATH).json() == {"help": panel_help.HELP}


def test_names_payload_never_raises(caplog):
    def broken() -> list[str]:
        raise PermissionError("identities folder unreadable")

    out = names_payload(broken, lambda: "not a number")
    assert out["names"] == [] and out["weight"] == 0.85
    assert "PermissionError: identities folder unreadable" in out["error"]
    assert "listing the identities" in caplog.text
