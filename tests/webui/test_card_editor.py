"""``webui/card_editor.py``: the edit button of a HyperLoRA card, built by the host's Extra Networks UI
(``ui_extra_networks.create_ui``) on the fake Forge with gradio 4.40 and Forge's gradio shims (A1111's
gradio 3.41 cannot be installed beside it; the e2e suite runs the editor in both WebUIs)."""

import html
import json
import warnings

import pytest
from gradio_events import by_elem_id, event, then
from people import ALICE, BOB

from hyperlora_ext.app.panel.help import HELP

KEYS = ("new_name", "rename", "lora_name", "lora_overwrite", "save", "confirm", "delete")


@pytest.fixture
def built(forge):
    import gradio as gr
    from modules.gradio_extensions import GradioDeprecationWarning

    ext = forge.start()
    ext.service.create_identity(ALICE, "alice", "tiny_id", image_names=["a1.png", "a2.png"])
    ext.service.create_identity([BOB], "bob", "tiny_id")
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradioDeprecationWarning)  # an argument gradio 4 does not know
        with gr.Blocks() as demo:
            ui = forge.ui_extra_networks.create_ui(demo, [], "txt2img")
    [editor] = ui.user_metadata_editors
    editor.page.create_html("txt2img")  # the page's first load
    return ext, demo, ui, editor


def test_the_editor_has_our_controls_with_hover_help(built):
    ext, demo, ui, editor = built
    assert type(editor).__name__ == "HyperLoRAUserMetadataEditor" and editor.panel is ext.panel
    for key in KEYS:
        assert by_elem_id(demo, f"{editor.id_part}_{key}").webui_tooltip == HELP[key]
    assert by_elem_id(demo, f"{editor.id_part}_hyperlora_status") is not None


def test_opening_a_card_shows_its_identity(built):
    ext, demo, ui, editor = built
    opened = event(demo, editor.button_edit)
    name, description, table, preview, notes, new_name, overwrite, confirm, status = opened.fn("alice")
    identity = ext.service.identities.get("alice")
    assert name == "alice" and new_name == "alice" and status == ""
    assert "Identity hash:" in table and identity.hash in table and html.escape("<hyperlora:alice:0.85>") in table
    assert "Made from:" in table and "a1.png, a2.png" in table and "alice.preview.png" in preview
    assert overwrite["value"] is False and confirm["value"] is False
    [show] = then(demo, opened)
    assert show.fn()["visible"] is True


def test_the_table_says_what_is_wrong_instead_of_failing(forge, built):
    ext, demo, ui, editor = built
    ext.service.delete("alice")  # by another tab while the page still shows the card
    table = dict(editor.get_metadata_table("alice"))
    assert "no identity named 'alice'" in table["Problem:"]
    assert [task for task, _ in forge.reported()] == ["reading info for alice"]  # the host's own file facts
    ext.service.identities.store.path("bob").write_bytes(b"damaged")
    table = dict(editor.get_metadata_table("bob"))
    assert "Problem:" in table and "File size: " in table


def test_rename_moves_the_card_and_refreshes_the_page(forge, built):
    ext, demo, ui, editor = built
    rename = event(demo, by_elem_id(demo, f"{editor.id_part}_rename"))
    status, now, shown, table, preview = rename.fn("alice", "carol")
    assert "Renamed" in status and now == "carol" and shown == "carol"
    assert ext.service.identities.store.names() == ["bob", "carol"]
    assert "carol" in editor.page.items and "alice" not in editor.page.items
    assert "carol.preview.png" in preview and "Identity hash:" in table
    [refresh_js] = then(demo, rename)
    assert json.dumps(ui.refresh_buttons["hyperlora"].elem_id) in refresh_js.js  # the host's own refresh button
    status, now, *_ = rename.fn("carol", "bob")
    assert now == "carol" and "bob" in status and ext.service.identities.store.names() == ["bob", "carol"]


def test_notes_saved_after_a_rename_go_to_the_new_name(built):
    ext, demo, ui, editor = built
    event(demo, by_elem_id(demo, f"{editor.id_part}_rename")).fn("alice", "carol")
    save = event(demo, editor.button_save)
    save.fn("carol", "my friend", "from the lake")
    notes = json.loads(ext.service.identities.user_metadata_path("carol").read_text())
    assert notes == {"description": "my friend", "notes": "from the lake"}
    editor.page.items.clear()  # e.g. deleted while the editor was open: nothing written, no error
    ext.service.delete("bob")
    save.fn("bob", "x", "y")
    assert not ext.service.identities.user_metadata_path("bob").exists()


def test_save_as_lora_writes_a_file_the_lora_extension_lists(forge, built):
    ext, demo, ui, editor = built
    save = event(demo, by_elem_id(demo, f"{editor.id_part}_save"))
    assert "Saved" in save.fn("alice", "", False)
    assert "alice" in forge.networks.available_networks
    assert "already exists" in save.fn("alice", "", False)
    assert "Saved" in save.fn("alice", "alice", True)


def test_delete_needs_the_confirmation_then_removes_the_card(built):
    ext, demo, ui, editor = built
    delete = event(demo, by_elem_id(demo, f"{editor.id_part}_delete"))
    status, confirm = delete.fn("bob", False)
    assert "confirm" in status and "bob" in ext.service.identities.store and "bob" in editor.page.items
    status, confirm = delete.fn("bob", True)
    assert "Deleted" in status and confirm["value"] is False
    assert "bob" not in ext.service.identities.store and "bob" not in editor.page.items
    [refresh_js] = then(demo, delete)
    assert "extra_refresh_internal" in refresh_js.js


def test_gradio_can_read_every_handlers_type_hints(built):
    """As ``test_ui``: gradio resolves each handler's type hints when its event runs."""
    from gradio.utils import get_type_hints

    _, demo, _, _ = built
    handlers = [f.fn for f in demo.fns.values() if f.fn is not None]
    assert handlers
    for fn in handlers:
        get_type_hints(fn)
