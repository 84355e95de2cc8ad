"""The panel's host-independent parts: the autocomplete's names route, the card editor's facts
table, card notes that follow renames, and the hover help of every control.

Real FastAPI app (TestClient), real tiny models and files (conftest); the WebUI itself and the
JavaScript are covered by tests/e2e/test_panel_browser.py.
"""

import html
import re
from pathlib import Path

import pytest
from face_pack import face_image
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from hyperlora_ext.app import panel_help
from hyperlora_ext.app.names_route import HELP_PATH, PATH, add_names_route, names_payload
from hyperlora_ext.app.panel import HostHooks, Panel, identity_facts
from hyperlora_ext.app.service import HyperLoRAService, ServiceConfig

ALICE = [face_image(feature=(170, 110, 90), seed=s) for s in (1, 2)]
BOB = face_image(feature=(250, 215, 190), seed=4)
WEBUI = Path(__file__).resolve().parents[1] / "hyperlora_ext" / "webui"


@pytest.fixture
def service(models_dir, tmp_path):
    cfg = ServiceConfig(models_dir=models_dir, identities_dir=tmp_path / "identities", device="cpu",
                        dtype="fp32", allow_download=False, default_weight=0.7)
    return HyperLoRAService(lambda: cfg)


@pytest.fixture
def panel(service, tmp_path):
    return Panel(service, HostHooks(lora_dir=lambda: tmp_path / "Lora", lora_saved=lambda p: None))


def test_names_route_lists_the_stored_names_and_the_default_weight(service, panel):
    app = FastAPI()
    add_names_route(app, panel.names, lambda: service.config.default_weight)
    add_names_route(app, panel.names, lambda: service.config.default_weight)  # a second start-up call: no-op
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


def test_identity_facts_for_photos_and_mixes(service):
    alice = service.create_identity(ALICE, "alice", "tiny_id", image_names=["a1.png", "a2.png"]).identity
    service.create_identity([BOB], "bob", "tiny_id", image_names=["b.png"])
    facts = dict(identity_facts(alice, 0.7))
    assert facts["Tag:"] == "<hyperlora:alice:0.7>" and facts["Model:"] == "tiny_id"
    assert facts["Identity hash:"] == alice.hash and facts["Made from:"] == "a1.png, a2.png"
    assert facts["Base-LoRA:"] in ("yes", "no")
    slider = dict(identity_facts(service.mix("alice - bob", "ab"), 0.7))
    assert slider["Slider of:"] == "alice (+1), bob (-1)" and "Made from:" not in slider
    mix = dict(identity_facts(service.mix("0.6*alice + 0.4*bob", "mixed"), 0.7))
    assert mix["Mix of:"] == "alice (+0.6), bob (+0.4)"


def test_card_notes_follow_rename_and_go_with_delete(service, panel):
    service.create_identity(ALICE, "alice", "tiny_id")
    notes = service.user_metadata_path("alice")
    notes.write_text('{"description": "my friend"}')
    text, now = panel.rename("alice", "alice2")
    text = html.unescape(text)
    assert now == "alice2" and "Renamed 'alice' to 'alice2'" in text
    assert not notes.exists() and service.user_metadata_path("alice2").read_text() == '{"description": "my friend"}'
    assert service.store.names() == ["alice2"]  # the .json beside it is not an identity
    text, gone = panel.delete("alice2", True)
    text = html.unescape(text)
    assert gone is None and "Deleted 'alice2'" in text
    assert not service.user_metadata_path("alice2").exists() and service.store.names() == []


def test_panel_messages_for_bad_input(panel):
    text, now = panel.rename(None, "x")
    assert "Select an identity first" in text and now is None
    text, now = panel.rename("ghost", "x")
    assert "No identity named 'ghost'" in html.unescape(text)
    assert "Select an identity first" in panel.save_lora(None, "", 0.0, False)
    text, _ = panel.delete("ghost", False)
    assert "Tick 'confirm'" in html.unescape(text)


@pytest.mark.parametrize("module", ["ui.py", "card_editor.py"])
def test_every_control_has_hover_help(module):
    source = (WEBUI / module).read_text()
    keys = set(re.findall(r"""tip\("(\w+)"\)""", source))
    assert keys, f"no tooltips in {module}"
    assert keys <= set(panel_help.HELP), keys - set(panel_help.HELP)
    assert all(len(panel_help.HELP[k]) > 15 for k in keys)
    # every input and button of the module gets its help: count the components against the tips
    components = re.findall(r"= gr\.(Textbox|Checkbox|Dropdown|Slider|Button|File|Gallery)\(", source)
    assert len(components) == len(re.findall(r"""tip\("\w+"\)""", source)), module


def test_uploads_are_named_by_their_file_name_not_the_temp_path(panel, tmp_path):
    """gradio 3.41 gives ``orig_name`` as the temporary *path*: messages show only the file name."""

    class Upload:  # gradio 3.41's tempfile wrapper: both attributes are paths under /tmp/gradio
        def __init__(self, path: Path) -> None:
            self.name = self.orig_name = str(path)

    alice, sky = tmp_path / "gradio" / "3f9c" / "alice.png", tmp_path / "gradio" / "77ab" / "sky.png"
    for path, img in ((alice, ALICE[0]), (sky, Image.new("RGB", (200, 200), (20, 40, 160)))):
        path.parent.mkdir(parents=True)
        img.save(path)
    crops, text, created = panel.create([Upload(alice), Upload(sky)], "alice", "tiny_id", True, False, False,
                                        lambda f, d: None)
    assert created == "alice" and "skipped: sky.png: no face found" in text and str(tmp_path) not in text
