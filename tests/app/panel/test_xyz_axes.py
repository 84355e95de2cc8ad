"""The X/Y/Z plot axes (``app.xyz_axes``): prompt rewriting and registration."""

import types

from hyperlora_ext.app.panel.xyz_axes import (
    BASE_AXIS,
    IDENTITY_AXIS,
    LABELS,
    WEIGHT_AXIS,
    register,
    set_base,
    set_identity,
    set_weight,
)


def test_axis_prompt_rewriting():
    p = "photo <hyperlora:alice:0.7> and <hyperlora:bob:1:0.3> <lora:x:1>"
    assert set_weight(p, 0) == "photo <hyperlora:alice:0> and <hyperlora:bob:0:0.3> <lora:x:1>"
    assert set_weight("<hyperlora:alice:w=0.5:base=0.2>", 1.25) == "<hyperlora:alice:1.25:base=0.2>"
    assert set_base(p, 0.5, 0.85) == "photo <hyperlora:alice:0.7:0.5> and <hyperlora:bob:1:0.5> <lora:x:1>"
    assert set_base("<hyperlora:alice>", 0.4, 0.85) == "<hyperlora:alice:0.85:0.4>"
    assert set_identity(p, "carol", 0.85) == "photo <hyperlora:carol:0.7> and <hyperlora:bob:1:0.3> <lora:x:1>"
    assert set_identity("photo", "carol", 0.85) == "photo <hyperlora:carol:0.85>"
    assert set_identity("", "carol", 1) == "<hyperlora:carol:1>"
    assert set_weight("no tags", 1) == "no tags"


class AxisOption:
    """The shape of xyz_grid.AxisOption (both hosts)."""

    def __init__(self, label, type, apply, format_value=None, confirm=None, cost=0.0, choices=None, prepare=None):
        self.label, self.type, self.apply, self.choices = label, type, apply, choices


def test_register_appends_the_axes_once():
    module = types.SimpleNamespace(AxisOption=AxisOption, axis_options=[AxisOption("Nothing", str, None)])
    other = types.SimpleNamespace(script_class=type("S", (), {"__module__": "other.py"}), module=object())
    data = [other, types.SimpleNamespace(script_class=type("X", (), {"__module__": "xyz_grid.py"}), module=module)]
    assert register(data, lambda: ["alice", "bob"], lambda: 0.85)
    assert register(data, lambda: ["alice", "bob"], lambda: 0.85)  # a script reload replaces them
    assert [o.label for o in module.axis_options] == ["Nothing", *LABELS]
    axes = {o.label: o for o in module.axis_options}
    assert axes[IDENTITY_AXIS].choices() == ["alice", "bob"] and axes[WEIGHT_AXIS].type is float
    p = types.SimpleNamespace(prompt="x <hyperlora:alice:1>", hr_prompt="")
    axes[WEIGHT_AXIS].apply(p, 0.5, [0.5])
    axes[BASE_AXIS].apply(p, 0.2, [0.2])
    axes[IDENTITY_AXIS].apply(p, "bob", ["bob"])
    assert p.prompt == "x <hyperlora:bob:0.5:0.2>" and p.hr_prompt == ""
    p = types.SimpleNamespace(prompt="x", hr_prompt="hires <hyperlora:alice>")
    axes[WEIGHT_AXIS].apply(p, 2, [2])
    assert p.prompt == "x" and p.hr_prompt == "hires <hyperlora:alice:2>"
    assert not register([other], lambda: [], lambda: 1.0)
