"""Not a host module: the loop of ``process_images_inner`` (A1111 v1.10.1@82a973c, and the Forge hosts) that
both processing fakes share, as far as extra networks and script hooks go: scripts' ``process``; per batch
the host's extra-network activation and a sampling; ``extra_networks.deactivate`` at the end only when the
prompt had tags (``if not p.disable_extra_networks and p.extra_network_data``); scripts' ``postprocess``."""

from modules import extra_networks


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
