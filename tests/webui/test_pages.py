"""``webui/pages.py``: the HyperLoRA page of the Extra Networks tabs on both fake hosts: one card per
identity, rendered by the host's own page code in both directory views."""

import html
import json

import pytest
from people import ALICE, BOB


@pytest.fixture
def page(webui):
    ext = webui.start()
    ext.service.create_identity(ALICE, "alice", "tiny_id")
    ext.service.create_identity([BOB], "bob", "tiny_id")
    [page] = webui.ui_extra_networks.extra_pages
    return page


@pytest.mark.parametrize("view", ["Dirs", "Tree"])
def test_the_page_lists_a_card_per_identity(webui, page, view):
    webui.shared.opts.extra_networks_tree_view_style = view
    folder = page.service.config.identity_folder
    text = page.create_html("txt2img")
    assert list(page.items) == ["alice", "bob"]
    for name in ("alice", "bob"):
        item = page.items[name]
        assert item["filename"] == str(folder / f"{name}.safetensors")
        assert item["prompt"] == json.dumps(f"<hyperlora:{name}:0.85>")  # a JS string, inserted on click
        assert item["preview"].startswith("./sd_extra_networks/thumb?filename=")
        assert f"{name}.preview.png" in item["preview"] and item["local_preview"] == str(folder / f"{name}.preview.png")
        assert item["shorthash"] == page.service.identities.get(name).hash
        assert f'data-name="{name}"' in text and html.escape(f"<hyperlora:{name}:0.85>") in text
    if view == "Tree":
        assert f'data-hash="{page.items["alice"]["shorthash"]}"' in text


def test_cards_follow_the_folder_and_the_settings(webui, page):
    page.service.rename("bob", "carol")
    page.service.delete("alice")
    page.create_html("img2img")
    assert list(page.items) == ["carol"]
    webui.shared.opts.hyperlora_default_weight = 0.6
    assert page.create_item("carol")["prompt"] == '"<hyperlora:carol:0.6>"'
    assert page.create_item("ghost") is None
    assert page.allowed_directories_for_previews() == [str(page.service.config.identity_folder)]
    page.refresh()


def test_card_notes_are_the_hosts_user_metadata(webui, page):
    notes = page.service.identities.user_metadata_path("alice")
    notes.write_text(json.dumps({"description": "my friend", "notes": "n"}))
    page.create_html("txt2img")
    assert page.items["alice"]["description"] == "my friend"
    assert page.items["alice"]["user_metadata"]["notes"] == "n"


def test_one_card_refreshes_through_the_hosts_route(webui, page):
    page.create_html("txt2img")
    page.service.identities.user_metadata_path("alice").write_text(json.dumps({"description": "seen at the lake"}))
    card = webui.ui_extra_networks.get_single_card(page.name, "txt2img", "alice")
    assert 'data-name="alice"' in card["html"] and "seen at the lake" in card["html"]


def test_a_damaged_identity_file_still_gets_a_card(webui, page):
    page.service.identities.store.path("bob").write_bytes(b"not an identity")
    page.create_html("txt2img")
    assert page.items["bob"]["shorthash"] is None and page.items["alice"]["shorthash"]
