"""Fake of ``modules/sd_models.py`` of the ``ldm_patched`` hosts (reForge main@3b56b268 L946-963, Forge
Classic@1f95d717 L464-481, alike here): ``model_data`` holds the loaded SD model and, as on A1111, the
``lock`` the host holds while it loads one; ``read_metadata_from_safetensors`` for the Lora extension."""

import threading

import safetensors


class SdModelData:
    def __init__(self):
        self.sd_model = None
        self.loaded_sd_models = []
        self.was_loaded_at_least_once = False
        self.lock = threading.Lock()

    def get_sd_model(self):
        return self.sd_model

    def set_sd_model(self, v, already_loaded=False):
        self.sd_model = v
        self.was_loaded_at_least_once = True


model_data = SdModelData()


def read_metadata_from_safetensors(filename):
    with safetensors.safe_open(filename, "pt") as f:
        return dict(f.metadata() or {})
