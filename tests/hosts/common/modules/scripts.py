"""Fake of ``modules/scripts.py`` (A1111 v1.10.1@82a973c, the same in the Forge hosts): ``AlwaysVisible``, the
``Script`` base (hooks that do nothing), ``scripts_data``, the loaded script files as
``ScriptClassData(script_class, path, basedir, module)`` (a script file is loaded as a module named
after its file, ``xyz_grid.py``), and ``ScriptRunner``'s always-on part: one instance of each
``AlwaysVisible`` script, whose ``process``, ``after_extra_networks_activate`` and ``postprocess`` get
``p`` and the script's arguments (none given: what an API request without ``alwayson_scripts`` passes to
a script whose UI is not built). Left out: the UI, selectable scripts, the other hooks."""

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

    def process(self, p, *args):
        pass

    def after_extra_networks_activate(self, p, *args, **kwargs):
        pass

    def postprocess(self, p, processed, *args):
        pass


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


class ScriptRunner:
    def __init__(self, is_img2img=False):
        self.alwayson_scripts = []
        for data in scripts_data:
            script = data.script_class()
            if script.show(is_img2img) is AlwaysVisible:
                self.alwayson_scripts.append(script)

    def _args(self, p, script):
        return getattr(p, "script_args", ())[script.args_from:script.args_to]

    def process(self, p):
        for script in self.alwayson_scripts:
            script.process(p, *self._args(p, script))

    def after_extra_networks_activate(self, p, **kwargs):
        for script in self.alwayson_scripts:
            script.after_extra_networks_activate(p, *self._args(p, script), **kwargs)

    def postprocess(self, p, processed):
        for script in self.alwayson_scripts:
            script.postprocess(p, processed, *self._args(p, script))
