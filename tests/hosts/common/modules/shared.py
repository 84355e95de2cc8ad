"""Fake of ``modules/shared.py`` with ``shared_items.Shared`` (A1111 v1.10.1@82a973c = Forge@dfdcbab): ``cmd_opts``
(the command line), ``opts`` (settings, with the host's defaults for those its extra networks and
Lora code read), ``OptionInfo`` / ``options_section``, and ``sd_model`` as a property that reads
``sd_models.model_data`` like the host's module-class trick. ``cmd_opts`` and ``opts`` are set up by
``tests/webui/conftest.py`` for each test."""

import sys
from argparse import Namespace

from modules import options, util

OptionInfo = options.OptionInfo
options_section = options.options_section
walk_files = util.walk_files
natural_sort_key = util.natural_sort_key

cmd_opts = Namespace(lora_dir=None, api=False, api_auth=None, hyperlora_models_dir=None, lyco_dir_backcompat="",
                     freeze_settings=False)

options_templates = {
    "sd_lora": OptionInfo("None", "Add network to prompt"),
    "lora_preferred_name": OptionInfo("Alias from file", "When adding to prompt, refer to Lora by"),
    "lora_add_hashes_to_infotext": OptionInfo(True, "Add Lora hashes to infotext"),
    "lora_in_memory_limit": OptionInfo(0, "Number of Lora networks to keep cached in memory"),
    "lora_functional": OptionInfo(False, "Lora/Networks: use old method"),
    "extra_networks_default_multiplier": OptionInfo(1.0, "Default multiplier for extra networks"),
    "extra_networks_tree_view_style": OptionInfo("Dirs", "Extra Networks directory view style"),
    "extra_networks_tree_view_default_enabled": OptionInfo(True, "Show the Extra Networks directory view"),
    "extra_networks_card_show_desc": OptionInfo(True, "Show description on card"),
    "extra_networks_card_description_is_html": OptionInfo(False, "Treat card description as HTML"),
    "extra_networks_hidden_models": OptionInfo("When searched", "Show cards for models in hidden directories"),
    "samples_format": OptionInfo("png", "File format for images"),
}
opts = options.Options(options_templates)


class Shared(sys.modules[__name__].__class__):
    @property
    def sd_model(self):
        import modules.sd_models

        return modules.sd_models.model_data.get_sd_model()

    @sd_model.setter
    def sd_model(self, value):
        import modules.sd_models

        modules.sd_models.model_data.set_sd_model(value)


sys.modules[__name__].__class__ = Shared
