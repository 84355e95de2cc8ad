"""Every control of the accordion and the card editor has hover help."""

import re
from pathlib import Path

import pytest

from hyperlora_ext.app.panel import help as panel_help

WEBUI = Path(__file__).resolve().parents[3] / "hyperlora_ext" / "webui"


@pytest.mark.parametrize("module", ["ui.py", "card_editor.py"])
def test_every_control_has_hover_help(module):
    source = (WEBUI / module).read_text()
    keys = set(re.findall(r"""tip\("(\w+)"\)""", source))
    assert keys, f"no tooltips in {module}"
    assert keys <= set(panel_help.HELP), keys - set(panel_help.HELP)
    assert all(len(panel_help.HELP[k]) > 15 for k in keys)
    # every input and button of the module gets its help: count the components against the tips
    components = re.findall(r"= gr\.(Textbox|Checkbox|Dropdown|Slider|Button|File|Gallery)\(", source)
    assert len(components) == len(re.findall(r"""tip\("\w+"\)""", source)), module
