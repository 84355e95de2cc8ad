"""Fake of ``scripts/xyz_grid.py`` (A1111 v1.10.1@82a973c; Forge@dfdcbab adds axes such as "Distilled CFG Scale"):
``AxisOption`` (label, type, apply(p, x, xs), format_value, confirm, cost, choices, prepare), the
module-level ``axis_options`` list the X/Y/Z script copies into its dropdowns when it builds its UI,
and the ``Script`` subclass that makes the host list this file in ``scripts_data``. Left out: the
host's other axes and the grid itself."""

from modules import scripts


def format_value_add_label(p, opt, x):
    return f"{opt.label}: {x}"


def apply_prompt(p, x, xs):
    if xs[0] not in p.prompt and xs[0] not in p.negative_prompt:
        raise RuntimeError(f"Prompt S/R did not find {xs[0]} in prompt or negative prompt.")
    p.prompt = p.prompt.replace(xs[0], x)
    p.negative_prompt = p.negative_prompt.replace(xs[0], x)


class AxisOption:
    def __init__(self, label, type, apply, format_value=format_value_add_label, confirm=None, cost=0.0,
                 choices=None, prepare=None):
        self.label = label
        self.type = type
        self.apply = apply
        self.format_value = format_value
        self.confirm = confirm
        self.cost = cost
        self.prepare = prepare
        self.choices = choices


axis_options = [
    AxisOption("Nothing", str, lambda p, x, xs: None),
    AxisOption("Prompt S/R", str, apply_prompt),
]


class Script(scripts.Script):
    def title(self):
        return "X/Y/Z plot"
