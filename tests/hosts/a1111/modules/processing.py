"""Fake of A1111 v1.10.1@82a973c ``modules/processing.py``: the processing object ``p`` (the fields extra
networks and our adapter read) and, from ``process_images_inner``, scripts' ``process``, then per
batch the extra-network steps: the prompts of the batch, ``parse_extra_network_prompts`` (tags of
the first prompt) and ``extra_networks.activate``; ``sample`` stands for the UNet's forward, where
the Lora extension merges ``loaded_networks`` into each layer it touches
(``networks.network_apply_weights``); at the end ``extra_networks.deactivate`` (only when the prompt
had tags) and scripts' ``postprocess``. Left out: conditioning, the sampler, hires fix, images,
scripts' other hooks."""

import torch

from modules import extra_networks, processing_common
from modules.processing_common import StableDiffusionProcessing  # noqa: F401 (the host's name)


def activate_extra_networks(p, n=0):
    """Batch ``n`` of ``process_images_inner`` up to the conditioning."""
    p.iteration = n
    p.prompts = p.all_prompts[n * p.batch_size:(n + 1) * p.batch_size]
    p.parse_extra_network_prompts()
    if not p.disable_extra_networks:
        extra_networks.activate(p, p.extra_network_data)


def sample(sd_model):
    """The forward pass as far as the Lora extension sees it: each named layer applies the networks."""
    import networks

    for module in sd_model.network_layer_mapping.values():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):  # the layer types whose forward it patches
            networks.network_apply_weights(module)


def process_images(p):
    """``process_images_inner`` as far as extra networks and script hooks go; returns ``p``."""
    return processing_common.process_images(p, activate_extra_networks, sample)
