"""Not a host module: what both processing fakes share, alike at A1111 v1.10.1@82a973c and the Forge hosts.

``StableDiffusionProcessing``: the processing object ``p`` (the fields extra networks and our adapter read);
``process_images``: the loop of ``process_images_inner`` as far as extra networks and script hooks go: scripts'
``process``; per batch the host's extra-network activation and a sampling; ``extra_networks.deactivate`` at
the end only when the prompt had tags (``if not p.disable_extra_networks and p.extra_network_data``);
scripts' ``postprocess``."""

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
    n_iter: int = 1

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


def process_images(p, activate_extra_networks, sample):
    if p.scripts is not None:
        p.scripts.process(p)
    for n in range(p.n_iter):
        activate_extra_networks(p, n)
        sample(p.sd_model)
    if not p.disable_extra_networks and p.extra_network_data:
        extra_networks.deactivate(p, p.extra_network_data)
    if p.scripts is not None:
        p.scripts.postprocess(p, None)
    return p
