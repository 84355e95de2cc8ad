import pytest
from builders import full_sdxl_modules

from hyperlora_ext.model.sdxl_names import to_compvis


@pytest.mark.parametrize("name,expected", [
    ("down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor",
     "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1"),
    ("down_blocks.2.attentions.1.transformer_blocks.9.attn2", "lora_unet_input_blocks_8_1_transformer_blocks_9_attn2"),
    ("lora_unet_down_blocks_1_attentions_1_transformer_blocks_1_attn2",
     "lora_unet_input_blocks_5_1_transformer_blocks_1_attn2"),
    ("mid_block.attentions.0.transformer_blocks.4.attn1.processor",
     "lora_unet_middle_block_1_transformer_blocks_4_attn1"),
    ("lora_unet_mid_block_attentions_0_transformer_blocks_4_attn1",
     "lora_unet_middle_block_1_transformer_blocks_4_attn1"),
    ("up_blocks.0.attentions.2.transformer_blocks.9.attn2.processor",
     "lora_unet_output_blocks_2_1_transformer_blocks_9_attn2"),
    ("lora_unet_up_blocks_1_attentions_0_transformer_blocks_1_attn1",
     "lora_unet_output_blocks_3_1_transformer_blocks_1_attn1"),
    ("lora_unet_output_blocks_5_1_transformer_blocks_1_attn1",
     "lora_unet_output_blocks_5_1_transformer_blocks_1_attn1"),
    ("lora_unet_middle_block_1_transformer_blocks_0_attn2", "lora_unet_middle_block_1_transformer_blocks_0_attn2"),
])
def test_three_spellings_map_to_compvis(name, expected):
    assert to_compvis(name) == expected


@pytest.mark.parametrize("bad", ["", "attn1", "down_blocks.1.attentions.0.transformer_blocks.0.attn3",
                                 "mid_block.1.attentions.0.transformer_blocks.0.attn1",
                                 "lora_unet_middle_block_3_1_transformer_blocks_0_attn1",
                                 "lora_te_text_model_encoder_layers_0_self_attn"])
def test_other_names_are_refused(bad):
    with pytest.raises(ValueError, match="not an SDXL attention module"):
        to_compvis(bad)


def test_sdxl_module_list():
    """The builders' list of the 140 SDXL attention modules (the full-size test checkpoints) is SDXL's."""
    modules = full_sdxl_modules()
    assert len(modules) == 140
    names = {to_compvis(n) for n, _, _ in modules}
    assert len(names) == 140  # distinct after conversion
    assert sum(1 for _, _, c in modules if c == 2048) == 70
    assert {h for _, h, _ in modules} == {640, 1280}
