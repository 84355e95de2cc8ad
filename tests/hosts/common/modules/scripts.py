"""Fake of ``modules/scripts.py`` (A1111 v1.10.1@82a973c and Forge@dfdcbab): ``AlwaysVisible``, the ``Script`` base,
and ``scripts_data``, the loaded script files as ``ScriptClassData(script_class, path, basedir,
module)``; a script file is loaded as a module named after its file (``xyz_grid.py``)."""

import importlib.util
import os
from collections import namedtuple

AlwaysVisible = object()
ScriptClassData = namedtuple("ScriptClassData", ["script_class", "path", "basedir", "module"])
scripts_data = []


class Script:
    filename = None
    args_from = None
    args_to = None

    def title(self):
        raise NotImplementedError

    def show(self, is_img2img):
        return True


def load_module(path):
    """``script_loading.load_module``: the file as a module named after its base name."""
    module_spec = importlib.util.spec_from_file_location(os.path.basename(path), path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def load_scripts(paths):
    """The part of ``load_scripts`` that registers each file's ``Script`` subclasses."""
    for path in paths:
        module = load_module(path)
        for script_class in module.__dict__.values():
            if isinstance(script_class, type) and issubclass(script_class, Script) and script_class is not Script:
                scripts_data.append(ScriptClassData(script_class, path, os.path.dirname(path), module))
