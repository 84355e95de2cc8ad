"""Fake of Forge Classic@1f95d717 ``extensions-builtin/xyz/lib_xyz/classes.py``: ``AxisOption`` (the same
arguments as A1111's: label, type, apply(p, x, xs), format_value, confirm, cost, choices, prepare)."""


class AxisOption:
    def __init__(self, label, type, apply, format_value=None, confirm=None, cost=0.0, choices=None, prepare=None):
        self.label = label
        self.type = type
        self.apply = apply
        self.format_value = format_value
        self.confirm = confirm
        self.cost = cost
        self.prepare = prepare
        self.choices = choices
