"""Fake of Forge Classic@1f95d717 ``extensions-builtin/xyz/scripts/xyz_grid.py``: Classic moved the X/Y/Z plot
into a built-in extension; the script file keeps its name (loaded as ``xyz_grid.py``), ``AxisOption`` (from
``lib_xyz.classes``) and the module-level ``axis_options`` its UI copies. Left out: its own axes, the grid."""

from lib_xyz.classes import AxisOption
from modules import scripts

axis_options = [
    AxisOption("Nothing", str, lambda p, x, xs: None),
    AxisOption("Prompt S/R", str, lambda p, x, xs: None),
]


class Script(scripts.Script):
    def title(self):
        return "X/Y/Z plot"
