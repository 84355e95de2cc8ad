"""The panel's handlers (``app.panel``): create, mix, show, save, rename, delete, insert for ADetailer, as
status messages."""

import html
from pathlib import Path

from face_pack import face_image
from people import ALICE, ALICE_PATTERNED, BOB, BOB_PATTERNED, NO_FACE
from PIL import Image

from hyperlora_ext.app.core.host_hooks import HostHooks
from hyperlora_ext.app.panel.panel import ADETAILER_FACE_TEXT, Panel, identity_facts, upload_path


class Gradio3Upload:
    """What gradio 3 hands a File component's handler: a tempfile wrapper with name/orig_name."""

    def __init__(self, path, orig_name):
        self.name, self.orig_name = str(path), orig_name


def test_panel_flow(service, tmp_path):
    saved = []
    hooks = HostHooks(lora_dir=lambda: tmp_path / "Lora", lora_saved=saved.append)
    panel = Panel(service, hooks)
    files = []
    for i, img in enumerate([*ALICE, NO_FACE]):
        path = tmp_path / f"up{i}.png"
        img.save(path)
        files.append(path)
    assert upload_path(str(files[0])) == (str(files[0]), "up0.png")
    uploads = [Gradio3Upload(files[0], "me.png"), str(files[1]), Gradio3Upload(files[2], "sky.png")]
    crops, status, created = panel.create(uploads, "alice", "tiny_id", True, False, False, lambda f, d: None)
    assert created == "alice" and len(crops) == 2
    assert "sky.png: no face found" in status and "&lt;hyperlora:alice:0.85&gt;" in status
    crops, status, created = panel.create([], "x", None, True, False, False, lambda f, d: None)
    assert created is None and "Upload" in status
    crops, status, created = panel.create([str(files[2])], "sky", None, True, False, False, lambda f, d: None)
    assert created is None and "No usable face" in status and panel.names() == ["alice"]
    crops, status = panel.show("alice")
    assert len(crops) == 2 and "tiny_id" in status
    status = panel.save_lora("alice", "", 0.0, False)
    assert "Saved" in status and saved == [(tmp_path / "Lora" / "alice.safetensors").resolve()]
    assert "already exists" in panel.save_lora("alice", "", 0.0, False)
    status, now = panel.rename("alice", "carol")
    assert now == "carol" and panel.names() == ["carol"]
    status, now = panel.delete("carol", False)
    assert now == "carol" and "confirm" in status
    status, now = panel.delete("carol", True)
    assert now is None and panel.names() == []


def test_panel_reports_unexpected_errors(service, tmp_path, caplog):
    def refresh_fails(path):  # the host's Lora-list refresh
        raise RuntimeError("Lora list refresh failed")

    def cancelled(fraction, desc):  # the host's progress bar, e.g. on cancel
        raise RuntimeError("cancelled by the user")

    panel = Panel(service, HostHooks(lora_dir=lambda: tmp_path / "Lora", lora_saved=refresh_fails))
    upload = tmp_path / "a.png"
    ALICE[0].save(upload)
    with caplog.at_level("ERROR", logger="hyperlora_ext.app.panel.panel"):
        crops, status, created = panel.create([str(upload)], "alice", "tiny_id", True, False, False, cancelled)
    assert created is None and crops == []
    assert "Creating the identity failed: RuntimeError: cancelled by the user" in status and "#d33" in status
    assert caplog.records[-1].exc_info is not None  # traceback in the console
    assert panel.create([str(upload)], "alice", "tiny_id", True, False, False, lambda f, d: None)[2] == "alice"
    status = panel.save_lora("alice", "", 0.0, False)
    assert "Saving the LoRA failed: RuntimeError: Lora list refresh failed" in status


def test_identity_facts_for_photos_and_mixes(service):
    alice = service.create_identity(ALICE, "alice", "tiny_id", image_names=["a1.png", "a2.png"]).identity
    service.create_identity([BOB], "bob", "tiny_id", image_names=["b.png"])
    facts = dict(identity_facts(alice, 0.7))
    assert facts["Tag:"] == "<hyperlora:alice:0.7>" and facts["Model:"] == "tiny_id"
    assert facts["Identity hash:"] == alice.hash and facts["Made from:"] == "a1.png, a2.png"
    assert facts["Base-LoRA:"] == "no"  # tiny_id has no Base-LoRA; tiny_base below has one
    carol = service.create_identity([BOB], "carol", "tiny_base").identity
    assert dict(identity_facts(carol, 0.7))["Base-LoRA:"] == "yes"
    slider = dict(identity_facts(service.mix("alice - bob", "ab"), 0.7))
    assert slider["Slider of:"] == "alice (+1), bob (-1)" and "Made from:" not in slider
    mix = dict(identity_facts(service.mix("0.6*alice + 0.4*bob", "mixed"), 0.7))
    assert mix["Mix of:"] == "alice (+0.6), bob (+0.4)"


def test_panel_messages_for_bad_input(panel):
    text, now = panel.rename(None, "x")
    assert "Select an identity first" in text and now is None
    text, now = panel.rename("ghost", "x")
    assert "No identity named 'ghost'" in html.unescape(text)
    assert "Select an identity first" in panel.save_lora(None, "", 0.0, False)
    text, _ = panel.delete("ghost", False)
    assert "Tick 'confirm'" in html.unescape(text)


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


def test_panel_shows_the_photo_check_and_mixes(service, tmp_path):
    panel = Panel(service, HostHooks(lora_dir=lambda: tmp_path / "Lora", lora_saved=lambda p: None))
    files = []
    for i, img in enumerate([*ALICE_PATTERNED[:2], BOB_PATTERNED[0]]):
        files.append(str(tmp_path / f"p{i}.png"))
        img.save(files[-1])
    crops, status, created = panel.create(files, "alice", "tiny_id", True, False, False, lambda f, d: None)
    assert created == "alice" and len(crops) == 3
    assert [c for _, c in crops][2].startswith("p2.png: ") and crops[2][1].endswith("(flagged)")
    assert "photo check" in status and "p2.png" in status and "looks like someone else" in status
    crops, status, created = panel.create(files, "alice2", "tiny_id", True, False, False, lambda f, d: None,
                                          drop_flagged=True)
    assert len(crops) == 2 and not any("flagged" in c for _, c in crops) and "left out" in status
    panel.create(files[2:], "bob", "tiny_id", True, False, False, lambda f, d: None)
    status, name = panel.mix("0.5*alice2 + 0.5*bob", "mixed", False)
    assert name == "mixed" and "Created mix" in status and "&lt;hyperlora:mixed:0.85&gt;" in status
    status, name = panel.mix("alice2 - ghost", "s", False)
    assert name is None and "ghost" in status


def test_insert_for_adetailer(panel):
    panel.service.create_identity([ALICE[0]], "alice", "tiny_id")
    panel.service.create_identity([BOB], "Bob", "tiny_id")
    # ADetailer installed: its first prompt gets one part per face, left to right, in the order picked
    text, status = panel.adetailer_prompt(["Bob", "alice"], 0.8, 0.0, "")
    assert text == f"<hyperlora:Bob:0.8> {ADETAILER_FACE_TEXT} [SEP] <hyperlora:alice:0.8> {ADETAILER_FACE_TEXT}"
    status = html.unescape(status)
    assert "face 1 Bob, face 2 alice" in status and "Position (left to right)" in status and "#d33" not in status
    # what is in the box already stays, part by part (its old tags are replaced); the base weight is written
    text, _ = panel.adetailer_prompt(["alice", "bob"], 0.85, 0.3,
                                     "<hyperlora:carol:1> photo of a woman [SEP] photo of a man, smiling")
    assert text == "<hyperlora:alice:0.85:0.3> photo of a woman [SEP] <hyperlora:Bob:0.85:0.3> photo of a man, smiling"
    # ADetailer not installed: the box is left alone and the status shows the text to copy
    text, status = panel.adetailer_prompt(["alice", "Bob"], 0.85, 0.0, None)
    assert text is None and "not installed" in status
    assert html.escape(f"<hyperlora:alice:0.85> {ADETAILER_FACE_TEXT} [SEP] <hyperlora:Bob:0.85> "
                       f"{ADETAILER_FACE_TEXT}") in status and "<code>" in status


def test_insert_for_adetailer_needs_known_identities(panel):
    for picked in (None, [], [""]):
        text, status = panel.adetailer_prompt(picked, 0.85, 0.0, "keep me")
        assert text is None and "Pick one identity per face" in status and "#d33" in status
    text, status = panel.adetailer_prompt(["ghost"], 0.85, 0.0, "keep me")
    assert text is None and "No identity named &#x27;ghost&#x27;" in status


def test_a_create_with_100_photos_works_and_one_more_is_refused_up_front(panel, service, tmp_path):
    """#26 A1: the panel takes as many photos as the API (``MAX_PHOTOS``, 100): 100 make an identity, 101
    are refused before anything is loaded, with a message that gives the limit."""
    files = []
    for i in range(101):
        path = tmp_path / f"p{i}.png"
        face_image(feature=(170, 110, 90), seed=100 + i).save(path)
        files.append(str(path))
    crops, status, created = panel.create(files[:100], "many", "tiny_id", True, False, False, lambda f, d: None)
    assert created == "many" and len(crops) == 100, status
    assert len(service.identities.get("many").source_names) == 100
    service.models.unload()
    crops, status, created = panel.create(files, "more", "tiny_id", True, False, False, lambda f, d: None)
    assert created is None and crops == []
    assert "101 photos; at most 100 per identity" in html.unescape(status)
    assert service.models.loaded_model is None
