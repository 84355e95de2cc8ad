"""Checkpoint folders (``model.checkpoint``): every problem named with its file."""

import pytest
from builders import make_checkpoint

import hyperlora_ext
from hyperlora_ext import CheckpointError

CLIP = 48  # CLIP width the checkpoints are made for (they are inspected, never run)


def test_bad_checkpoint_messages(tmp_path):
    ck = make_checkpoint(tmp_path / "ck", clip_dim=CLIP)
    (ck / "resampler.safetensors").rename(ck / "resampler.bin")
    with pytest.raises(CheckpointError, match=r"resampler.safetensors: missing; found resampler.bin.*pickle"):
        hyperlora_ext.inspect_checkpoint(ck)
    (ck / "resampler.bin").unlink()
    with pytest.raises(CheckpointError, match="resampler.safetensors: file is missing"):
        hyperlora_ext.inspect_checkpoint(ck)


@pytest.mark.parametrize("damage,match", [
    (lambda ck: (ck / "hyper_lora_modules.json").write_text("{not json"), "hyper_lora_modules.json: not valid JSON"),
    (lambda ck: (ck / "hyper_lora_modules.json").write_text('{"attn9": {"hidden_size": 16}}'),
     "not an SDXL attention module name"),
    (lambda ck: (ck / "hyper_lora_modules.json").write_text(
        '{"mid_block.attentions.0.transformer_blocks.0.attn1": {"hidden_size": "x"}}'), "needs integer"),
    (lambda ck: (ck / "resampler.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage!"),
     "resampler.safetensors: not a readable safetensors file"),
    (lambda ck: (ck / "id_projector.safetensors").unlink(), "id_projector.safetensors: file is missing"),
    (lambda ck: (ck / "base_resampler.safetensors").write_bytes((ck / "resampler.safetensors").read_bytes()),
     "no 'base_\\*_basis' tensors"),
])
def test_damaged_checkpoints(tmp_path, damage, match):
    ck = make_checkpoint(tmp_path / "ck", clip_dim=CLIP)
    damage(ck)
    with pytest.raises(CheckpointError, match=match) as err:
        hyperlora_ext.inspect_checkpoint(ck)
    assert str(ck) in str(err.value)


def test_json_and_weights_disagree(tmp_path):
    ck = make_checkpoint(tmp_path / "ck", clip_dim=CLIP)
    import json

    data = json.loads((ck / "hyper_lora_modules.json").read_text())
    first = next(iter(data))
    data[first]["hidden_size"] = 20
    (ck / "hyper_lora_modules.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match=r"hyper_lora_modules.safetensors: .*shape mismatch.*0.to_q"):
        hyperlora_ext.inspect_checkpoint(ck)
    data.pop(first)
    (ck / "hyper_lora_modules.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="unexpected key.*lists 3 modules"):
        hyperlora_ext.inspect_checkpoint(ck)


def test_wrong_head_width_in_config(tmp_path):
    ck = make_checkpoint(tmp_path / "ck", clip_dim=CLIP, heads=2, dim_head=16)
    (ck / "config.json").write_text('{"dim_head": 12}')
    with pytest.raises(CheckpointError, match="not a multiple of the head width 12"):
        hyperlora_ext.inspect_checkpoint(ck)


def test_missing_folder():
    with pytest.raises(CheckpointError, match="does not exist"):
        hyperlora_ext.inspect_checkpoint("/nonexistent/sdxl_hyper_id_lora_v1_fidelity")


def test_resampler_that_does_not_fit_the_module_list(tmp_path):
    ck = make_checkpoint(tmp_path / "ck", clip_dim=CLIP)
    other = make_checkpoint(tmp_path / "other", clip_dim=CLIP, modules=[
        ("down_blocks.1.attentions.0.transformer_blocks.0.attn1", 16, None)])
    (ck / "resampler.safetensors").write_bytes((other / "resampler.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="resampler.safetensors: latents/proj_out give 8 tokens.*need 32"):
        hyperlora_ext.inspect_checkpoint(ck)


@pytest.mark.parametrize("cut", [8, 100, -1000])
def test_truncated_basis_file_is_named_and_never_loaded(tmp_path, cut):
    ck = make_checkpoint(tmp_path / "ck", clip_dim=CLIP)
    basis = ck / "hyper_lora_modules.safetensors"
    data = basis.read_bytes()
    basis.write_bytes(data[:cut] if cut > 0 else data[:cut])
    with pytest.raises(CheckpointError, match="hyper_lora_modules.safetensors") as err:
        hyperlora_ext.load_model(ck, device="cpu", dtype="fp32")
    assert "Re-download" in str(err.value)
