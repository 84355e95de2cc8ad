"""Fake of Forge@dfdcbab ``modules/processing.py``: the processing object ``p`` (the fields extra networks
and our adapter read) and, from ``process_images_inner``, one batch's steps around extra networks:
``forge_objects`` reset from ``forge_objects_original``, the tags of the first prompt parsed,
``extra_networks.activate``, then ``forge_objects`` copied from
``forge_objects_after_applying_lora`` (sampling, hires and each ADetailer pass copy it again before
they sample). Left out: conditioning, sampling, hires fix, scripts' hooks."""

from dataclasses import dataclass, field

from modules import extra_networks, shared


@dataclass
class StableDiffusionProcessing:
    prompt: str = ""
    negative_prompt: str = ""
    batch_size: int = 1
    disable_extra_networks: bool = False
    all_prompts: list = None
    prompts: list = None
    seeds: list = field(default_factory=lambda: [1])
    subseeds: list = field(default_factory=lambda: [1])
    iteration: int = 0
    is_hr_pass: bool = False
    hr_prompts: list = field(default_factory=list)
    hr_extra_network_data: dict = field(default_factory=dict)
    extra_network_data: dict = None
    extra_generation_params: dict = field(default_factory=dict)
    comments: dict = field(default_factory=dict)
    scripts: object = None

    def __post_init__(self):
        if self.all_prompts is None:
            self.all_prompts = [self.prompt] * self.batch_size

    @property
    def sd_model(self):
        return shared.sd_model

    def comment(self, text):
        self.comments[text] = 1

    def parse_extra_network_prompts(self):
        self.prompts, self.extra_network_data = extra_networks.parse_prompts(self.prompts)


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
    """What loading the UNet for sampling does first (``memory_management.LoadedModel.model_load``):
    merge the UNet patcher's LoRA patches into the weights (``refresh_loras``)."""
    sd_model.forge_objects.unet.refresh_loras()
