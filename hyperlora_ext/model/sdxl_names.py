"""SDXL UNet attention module names: the three spellings of ``hyper_lora_modules.json``.

Every name is normalised to the kohya compvis-style prefix
(``lora_unet_input_blocks_4_1_transformer_blocks_0_attn1``) that A1111, Forge,
ComfyUI and kohya tools all load.
"""

from __future__ import annotations

import re

LORA_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out_0")  # kohya suffixes, in token order

# diffusers: down_blocks.1.attentions.0.transformer_blocks.0.attn1(.processor)
# kohya diffusers-style: lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1
_DIFFUSERS = re.compile(
    r"^(?:lora_unet_)?(?P<section>down_blocks|mid_block|up_blocks)[._](?:(?P<block>\d+)[._])?"
    r"attentions[._](?P<attention>\d+)[._]transformer_blocks[._](?P<tb>\d+)[._]attn(?P<n>[12])"
    r"(?:\.processor)?$"
)
# kohya compvis-style: lora_unet_input_blocks_4_1_transformer_blocks_0_attn1
_COMPVIS = re.compile(
    r"^lora_unet_(?P<section>input_blocks|middle_block|output_blocks)_(?:(?P<block>\d+)_)?1_"
    r"transformer_blocks_(?P<tb>\d+)_attn(?P<n>[12])$"
)


def to_compvis(name: str) -> str:
    """Normalise any accepted module-name spelling to the kohya compvis-style prefix.

    Raises ``ValueError`` for a name that is none of the three spellings.
    """
    m = _COMPVIS.match(name)
    if m:
        if (m["section"] == "middle_block") != (m["block"] is None):
            raise ValueError(f"not an SDXL attention module name: {name!r}")
        return name
    m = _DIFFUSERS.match(name)
    if not m or (m["section"] == "mid_block") != (m["block"] is None):
        raise ValueError(
            f"not an SDXL attention module name: {name!r} (expected e.g. "
            "'down_blocks.1.attentions.0.transformer_blocks.0.attn1.processor', "
            "'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1' or "
            "'lora_unet_input_blocks_4_1_transformer_blocks_0_attn1')"
        )
    attention, tb, n = int(m["attention"]), m["tb"], m["n"]
    if m["section"] == "mid_block":
        if attention != 0:
            raise ValueError(f"not an SDXL attention module name: {name!r}")
        block = "middle_block_1"
    elif m["section"] == "down_blocks":
        block = f"input_blocks_{1 + 3 * int(m['block']) + attention}_1"
    else:
        block = f"output_blocks_{3 * int(m['block']) + attention}_1"
    return f"lora_unet_{block}_transformer_blocks_{tb}_attn{n}"
