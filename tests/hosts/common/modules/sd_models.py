"""Fake of ``modules/sd_models.py`` at A1111 v1.10.1@82a973c, alike at reForge main@3b56b268 (L946-963) and Forge
Classic@1f95d717 (L464-481) in what is modelled (Forge 2 has its own, without the lock): ``model_data`` holds
the loaded SD model and the ``lock`` the host holds while it loads one (``get_sd_model`` loads on first use in
the host; here the test sets the model), ``read_state_dict`` for ``.safetensors`` files and
``read_metadata_from_safetensors``."""

import threading

import safetensors.torch


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


def read_state_dict(checkpoint_file, print_global_state=False, map_location=None):
    return safetensors.torch.load_file(checkpoint_file, device=map_location or "cpu")


def read_metadata_from_safetensors(filename):
    with safetensors.safe_open(filename, "pt") as f:
        return dict(f.metadata() or {})
