"""Fake of ``modules_forge/unet_patcher.py`` of the ``ldm_patched`` hosts: ``UnetPatcher``, the host's
``ModelPatcher`` (``ldm_patched.modules.model_patcher``) whose clones also carry the ControlNet chain and
the extra model patchers of sampling."""

from ldm_patched.modules.model_patcher import ModelPatcher


class UnetPatcher(ModelPatcher):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.controlnet_linked_list = None
        self.extra_model_patchers_during_sampling = []

    def clone(self):
        n = super().clone()
        n.controlnet_linked_list = self.controlnet_linked_list
        n.extra_model_patchers_during_sampling = self.extra_model_patchers_during_sampling.copy()
        return n
