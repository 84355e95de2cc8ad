"""Fake of Forge@dfdcbab ``modules/sd_models.py``: ``model_data`` (``get_sd_model`` / ``set_sd_model``;
unlike A1111 it has no ``lock``), a ``FakeInitialModel`` until a checkpoint is loaded, and
``read_metadata_from_safetensors``."""

import safetensors


class FakeInitialModel:
    def __init__(self):
        self.cond_stage_model = None
        self.chunk_length = 75


class SdModelData:
    def __init__(self):
        self.sd_model = FakeInitialModel()
        self.forge_loading_parameters = {}
        self.forge_hash = ""

    def get_sd_model(self):
        return self.sd_model

    def set_sd_model(self, v):
        self.sd_model = v


model_data = SdModelData()


def read_metadata_from_safetensors(filename):
    with safetensors.safe_open(filename, "pt") as f:
        return dict(f.metadata() or {})
