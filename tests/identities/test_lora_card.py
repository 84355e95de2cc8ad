"""``identities/lora_card.py``: a saved identity LoRA is a complete Lora card (header metadata with the model
spec's thumbnail, the preview, the host's user-metadata sidecar), and the sidecar keeps the user's edits."""

from __future__ import annotations

import base64
import io
import json

import pytest
import safetensors
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load_file

from hyperlora_ext.identities.identity import Identity
from hyperlora_ext.identities.lora_card import (
    TRIGGER_PHRASE,
    WRITTEN_KEY,
    CardFacts,
    read_sidecar,
    save_identity_lora,
    sidecar_path,
    user_metadata,
    write_sidecar,
)
from hyperlora_ext.lora import lora_state_dict


def _identity(seed: int = 0, name: str = "alice") -> Identity:
    g = torch.Generator().manual_seed(seed)
    return Identity(tokens=torch.randn(8, 4, generator=g), variant="tiny_id", model_fingerprint="fp1234",
                    name=name, created="2026-12-07T10:11:12",
                    crops=[Image.new("RGB", (300, 300), (200, 120 + seed, 90))])


def _lora(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    names = [f"lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_{p}" for p in "qkv"]
    return lora_state_dict(names, [(torch.randn(4, 16, generator=g), torch.randn(16, 4, generator=g))] * 3, 2.0)


def _header(path) -> dict[str, str]:
    with safetensors.safe_open(str(path), "pt") as f:
        return dict(f.metadata())


def test_a_saved_identity_lora_is_a_complete_card(tmp_path):
    identity = _identity()
    path = save_identity_lora(_lora(), tmp_path / "alice.safetensors", identity, 0.85, extra={"sources": "a.png"})
    assert path.with_name("alice.preview.png").is_file()
    assert torch.equal(load_file(path)["lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight"],
                       _lora()["lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight"].half())
    card = read_sidecar(path)
    assert card["activation text"] == TRIGGER_PHRASE == "fcsks fxhks fhyks"
    assert card["preferred weight"] == 0.85 and card["sd version"] == "SDXL"
    description = card["description"]
    for fact in ("alice", identity.hash, "tiny_id", "fp1234", "2026-12-07"):
        assert fact in description
    header = _header(path)
    assert header["ss_base_model_version"] == "sdxl_base_v1-0" and header["modelspec.title"] == "alice"
    assert header["modelspec.description"] == description and header["modelspec.trigger_phrase"] == TRIGGER_PHRASE
    assert header["hyperlora.identity_hash"] == identity.hash and header["hyperlora.sources"] == "a.png"
    assert json.loads(header[WRITTEN_KEY]) == card
    prefix = "data:image/jpeg;base64,"
    assert header["modelspec.thumbnail"].startswith(prefix)
    thumb = Image.open(io.BytesIO(base64.b64decode(header["modelspec.thumbnail"][len(prefix):])))
    assert thumb.format == "JPEG" and max(thumb.size) <= 192


def test_overwriting_keeps_what_the_user_changed_in_the_card_editor(tmp_path):
    path = tmp_path / "alice.safetensors"
    save_identity_lora(_lora(), path, _identity(0), 0.85)
    edited = {**read_sidecar(path), "preferred weight": 0.7, "notes": "for portraits", "extra key": 1}
    sidecar_path(path).write_text(json.dumps(edited))
    replaced = _identity(1)  # the identity was replaced: a new hash and description
    save_identity_lora(_lora(1), path, replaced, 0.9, overwrite=True)
    card = read_sidecar(path)
    assert card["preferred weight"] == 0.7 and card["notes"] == "for portraits" and card["extra key"] == 1
    assert replaced.hash in card["description"] and card["activation text"] == TRIGGER_PHRASE
    with pytest.raises(FileExistsError):
        save_identity_lora(_lora(2), path, _identity(2), 0.85)
    assert read_sidecar(path) == card  # refused: nothing written


def test_without_a_record_an_existing_sidecar_is_kept(tmp_path):
    path = tmp_path / "mine.safetensors"
    sidecar_path(path).write_text(json.dumps({"activation text": "my words", "preferred weight": 1.2}))
    values = write_sidecar(path, CardFacts.of(_identity(), 0.85), previously_written=None)
    assert values["activation text"] == "my words" and values["preferred weight"] == 1.2
    assert values["sd version"] == "SDXL"  # ours where the user had nothing


def test_a_damaged_sidecar_is_replaced(tmp_path):
    path = tmp_path / "alice.safetensors"
    sidecar_path(path).write_text("{not json")
    assert read_sidecar(path) == {}
    assert write_sidecar(path, CardFacts.of(_identity(), 0.8), None)["preferred weight"] == 0.8


KEYS = ["description", "sd version", "activation text", "preferred weight", "negative text", "notes"]


@settings(max_examples=40, deadline=None)
@given(edits=st.dictionaries(st.sampled_from(KEYS), st.one_of(st.text(max_size=8), st.floats(0, 2))))
def test_the_merge_keeps_exactly_the_edited_values(tmp_path_factory, edits):
    path = tmp_path_factory.mktemp("card") / "alice.safetensors"
    first = CardFacts.of(_identity(0), 0.85)
    written = write_sidecar(path, first, None)
    sidecar_path(path).write_text(json.dumps({**written, **edits}))
    second = CardFacts.of(_identity(1), 0.75)
    merged = write_sidecar(path, second, written)
    ours = user_metadata(second)
    for key in KEYS:
        edited = key in edits and edits[key] != written[key]
        assert merged[key] == (edits[key] if edited else ours[key])
