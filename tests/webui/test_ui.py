"""``webui/ui.py``: the HyperLoRA accordion, built with gradio 4.40 and Forge's gradio shims (the fake
Forge; A1111's gradio 3.41 cannot be installed beside it, the e2e suite runs the panel in both
WebUIs). Each handler is called the way gradio calls it: the event's function, the inputs' values."""

import html
import warnings

import pytest
from gradio_events import by_elem_id, event
from people import ALICE, BOB

from hyperlora_ext.app.panel.help import HELP


def _build(forge, ext, with_prompt_box=True):
    import gradio as gr
    from modules.gradio_extensions import GradioDeprecationWarning

    from hyperlora_ext.webui.ui import build_accordion

    with warnings.catch_warnings():
        warnings.simplefilter("error", GradioDeprecationWarning)  # an argument gradio 4 does not know
        with gr.Blocks() as demo:
            prompt = gr.Textbox(elem_id="txt2img_prompt") if with_prompt_box else None
            returned, _ = build_accordion(ext.panel, "txt2img", prompt)
    return demo, prompt, returned


@pytest.fixture
def panel_ui(forge, tmp_path):
    ext = forge.start()
    demo, prompt, returned = _build(forge, ext)

    def control(key):
        return by_elem_id(demo, f"hyperlora_txt2img_{key}")

    return ext, demo, prompt, returned, control


def _photos(tmp_path, images):
    paths = []
    for i, image in enumerate(images):
        path = tmp_path / f"photo{i}.png"
        image.save(path)
        paths.append(str(path))
    return paths


def test_the_accordion_returns_the_scripts_inputs_and_has_hover_help(panel_ui):
    ext, demo, prompt, (enabled, identity, weight, base), control = panel_ui
    assert (enabled.value, identity.value, weight.value, base.value) == (False, None, 0.85, 0.0)
    assert (weight.minimum, weight.maximum) == (-2.0, 2.0) and identity.elem_id == "hyperlora_txt2img_identity"
    helped = {key for key in HELP if any(getattr(b, "elem_id", None) == f"hyperlora_txt2img_{key}"
                                         for b in demo.blocks.values())}
    assert {"files", "create", "identity", "weight", "insert", "save", "mix", "rename", "delete"} <= helped
    for key in helped:
        assert control(key).webui_tooltip == HELP[key]


def test_create_stores_the_identity_and_selects_it(panel_ui, tmp_path):
    ext, demo, prompt, returned, control = panel_ui
    create = event(demo, control("create"))
    steps = []
    crops, status, identity = create.fn(_photos(tmp_path, ALICE), "alice", "tiny_id", True, False, False, False,
                                        None, progress=lambda fraction, desc=None: steps.append(fraction))
    assert ext.service.identities.store.names() == ["alice"]
    assert len(crops) == 2 and "Created 'alice'" in html.unescape(status)
    assert identity["choices"] == ["alice"] and identity["value"] == "alice" and steps
    crops, status, identity = create.fn([], "bob", "tiny_id", True, False, False, False, "alice",
                                        progress=lambda *a, **k: None)
    assert crops == [] and "Upload" in status and identity["value"] == "alice"


def test_insert_puts_the_tag_into_the_prompt(panel_ui):
    ext, demo, prompt, returned, control = panel_ui
    insert = event(demo, control("insert"))
    assert [c._id for c in insert.inputs][0] == prompt._id and [c._id for c in insert.outputs] == [prompt._id]
    assert insert.fn("a photo", "alice", 0.7, 0.0) == "a photo <hyperlora:alice:0.7>"
    assert insert.fn("a photo <hyperlora:alice:0.7>", "alice", 0.5, 0.25) == "a photo <hyperlora:alice:0.5:0.25>"
    assert insert.fn("a photo", None, 0.7, 0.0) == "a photo"


def test_without_a_prompt_box_insert_shows_the_tag(forge):
    ext = forge.start()
    demo, _, _ = _build(forge, ext, with_prompt_box=False)
    insert = event(demo, by_elem_id(demo, "hyperlora_txt2img_insert"))
    assert insert.fn("alice", 0.7, 0.0) == "<code>&lt;hyperlora:alice:0.7&gt;</code>"
    assert insert.fn(None, 0.7, 0.0) == ""


def test_refresh_and_the_tab_read_the_folder_again(panel_ui):
    ext, demo, prompt, (enabled, identity, weight, base), control = panel_ui
    ext.service.create_identity(ALICE, "alice", "tiny_id")  # in another tab
    identity_update, variant_update = event(demo, control("refresh"), output=identity).fn(None)
    assert identity_update["choices"] == ["alice"] and identity_update["value"] == "alice"
    assert variant_update["choices"] == ["tiny_base", "tiny_id"]
    ext.service.rename("alice", "anika")
    tab = event(demo, by_elem_id(demo, "hyperlora_txt2img_tab_use"), "select", output=identity)
    assert tab.fn("alice") == {"__type__": "update", "choices": ["anika"], "value": "anika"}
    faces, status = event(demo, identity, "input").fn("anika")
    assert len(faces) == 2 and "tiny_id" in status


def test_save_rename_mix_and_delete(forge, panel_ui):
    ext, demo, prompt, returned, control = panel_ui
    ext.service.create_identity(ALICE, "alice", "tiny_id")
    ext.service.create_identity([BOB], "bob", "tiny_id")
    assert "Saved" in event(demo, control("save")).fn("alice", "my_alice", 0.0, False)
    assert "my_alice" in forge.networks.available_networks
    status, identity = event(demo, control("mix")).fn("0.5*alice + 0.5*bob", "both", False, "alice")
    assert "Created mix 'both'" in html.unescape(status) and identity["value"] == "both"
    assert identity["choices"] == ["alice", "bob", "both"]
    status, identity = event(demo, control("rename")).fn("both", "pair")
    assert "Renamed" in status and identity["value"] == "pair"
    status, identity, confirm = event(demo, control("delete")).fn("pair", False)
    assert "confirm" in status and "pair" in ext.service.identities.store
    status, identity, confirm = event(demo, control("delete")).fn("pair", True)
    assert "Deleted" in status and identity["choices"] == ["alice", "bob"] and confirm["value"] is False


def test_gradio_can_read_every_handlers_type_hints(panel_ui):
    """gradio reads each handler's type hints when its event runs (``utils.get_type_hints``, which lets a
    NameError through): every annotation must resolve at run time."""
    from gradio.utils import get_type_hints

    _, demo, *_ = panel_ui
    handlers = [f.fn for f in demo.fns.values() if f.fn is not None]
    assert len(handlers) > 10
    for fn in handlers:
        get_type_hints(fn)
