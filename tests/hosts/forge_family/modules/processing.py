"""Fake of ``modules/processing.py`` of the three Forge hosts, alike in what is modelled here (Forge@dfdcbab,
reForge main@3b56b268 L1021-1041, Forge Classic@1f95d717 L853-872): the processing object ``p`` (the fields
extra networks and our adapter read) and, from ``process_images_inner``, the steps around extra networks:
scripts' ``process``, then per batch ``forge_objects`` reset from ``forge_objects_original``, the tags of
the first prompt parsed, ``extra_networks.activate``, ``forge_objects`` copied from
``forge_objects_after_applying_lora`` (sampling, hires and each ADetailer pass copy it again before
they sample), the sampling; at the end ``extra_networks.deactivate`` (only when the prompt had tags)
and scripts' ``postprocess``. Left out: conditioning, the sampler, hires fix, images, scripts' other
hooks."""

from modules import extra_networks, processing_common
from modules.processing_common import StableDiffusionProcessing  # noqa: F401 (the host's name)


def activate_extra_networks(p, n=0):
    """Batch ``n`` of ``process_images_inner`` up to the conditioning."""
    p.iteration = n
    p.sd_model.forge_objects = p.sd_model.forge_objects_original.shallow_copy()
    p.prompts = p.all_prompts[n * p.batch_size:(n + 1) * p.batch_size]
    p.parse_extra_network_prompts()
    if not p.disable_extra_networks:
        extra_networks.activate(p, p.extra_network_data)
    p.sd_model.forge_objects = p.sd_model.forge_objects_after_applying_lora.shallow_copy()


def sample(sd_model):
    """What loading the UNet for sampling does first: merge the UNet patcher's patches into the weights
    (Forge: ``memory_management.LoadedModel.model_load`` -> ``refresh_loras``; the ``ldm_patched`` hosts:
    ``model_management.load_models_gpu([unet])``)."""
    unet = sd_model.forge_objects.unet
    if hasattr(unet, "refresh_loras"):
        unet.refresh_loras()
    else:
        from ldm_patched.modules import model_management

        model_management.load_models_gpu([unet])


def process_images(p):
    """``process_images_inner`` as far as extra networks and script hooks go; returns ``p``."""
    return processing_common.process_images(p, activate_extra_networks, sample)
