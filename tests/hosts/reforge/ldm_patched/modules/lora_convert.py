"""Fake of reForge main@3b56b268 ``ldm_patched/modules/lora_convert.py``: ``convert_lora(sd)``, which
``load_lora_for_models`` applies first; it changes only Flux "BFL control" LoRAs (left out) and returns any
other dict as it is."""


def convert_lora(sd):
    return sd
