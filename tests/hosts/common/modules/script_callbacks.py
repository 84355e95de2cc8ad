"""Fake of ``modules/script_callbacks.py`` (A1111 v1.10.1@82a973c = Forge@dfdcbab): extensions register callbacks
per category (``on_*``); the host runs them (``*_callback``), each in a ``try`` that reports an
exception and goes on. ``before_ui`` and ``script_unloaded`` run in reverse order of
registration, like the host. Left out: ordering by extension metadata and user settings."""

from __future__ import annotations

import dataclasses
import inspect

from modules import errors


@dataclasses.dataclass
class ScriptCallback:
    script: str
    callback: object
    name: str = "unnamed"


CATEGORIES = ("app_started", "ui_settings", "before_ui", "infotext_pasted", "script_unloaded", "model_loaded",
              "before_component", "after_component")
callback_map = {f"callbacks_{c}": [] for c in CATEGORIES}


def clear_callbacks():
    for callbacks in callback_map.values():
        callbacks.clear()


def add_callback(callbacks, fun, *, name=None, category="unknown"):
    filename = inspect.getsourcefile(fun) or "unknown file"
    callbacks.append(ScriptCallback(filename, fun, f"{filename}/{category}" + (f"/{name}" if name else "")))


def ordered_callbacks(category):
    return list(callback_map["callbacks_" + category])


def _run(category, *args, reverse=False):
    callbacks = ordered_callbacks(category)
    for c in reversed(callbacks) if reverse else callbacks:
        try:
            c.callback(*args)
        except Exception:
            errors.report(f"Error executing callback {category}_callback for {c.script}", exc_info=True)


def app_started_callback(demo, app):
    _run("app_started", demo, app)


def ui_settings_callback():
    _run("ui_settings")


def before_ui_callback():
    _run("before_ui", reverse=True)


def infotext_pasted_callback(infotext: str, params: dict):
    _run("infotext_pasted", infotext, params)


def script_unloaded_callback():
    _run("script_unloaded", reverse=True)


def model_loaded_callback(sd_model):
    _run("model_loaded", sd_model)


def before_component_callback(component, **kwargs):
    for c in ordered_callbacks("before_component"):
        try:
            c.callback(component, **kwargs)
        except Exception:
            errors.report(f"Error executing callback before_component_callback for {c.script}", exc_info=True)


def after_component_callback(component, **kwargs):
    for c in ordered_callbacks("after_component"):
        try:
            c.callback(component, **kwargs)
        except Exception:
            errors.report(f"Error executing callback after_component_callback for {c.script}", exc_info=True)


def on_app_started(callback, *, name=None):
    add_callback(callback_map["callbacks_app_started"], callback, name=name, category="app_started")


def on_ui_settings(callback, *, name=None):
    add_callback(callback_map["callbacks_ui_settings"], callback, name=name, category="ui_settings")


def on_before_ui(callback, *, name=None):
    add_callback(callback_map["callbacks_before_ui"], callback, name=name, category="before_ui")


def on_infotext_pasted(callback, *, name=None):
    add_callback(callback_map["callbacks_infotext_pasted"], callback, name=name, category="infotext_pasted")


def on_script_unloaded(callback, *, name=None):
    add_callback(callback_map["callbacks_script_unloaded"], callback, name=name, category="script_unloaded")


def on_model_loaded(callback, *, name=None):
    add_callback(callback_map["callbacks_model_loaded"], callback, name=name, category="model_loaded")


def on_before_component(callback, *, name=None):
    add_callback(callback_map["callbacks_before_component"], callback, name=name, category="before_component")


def on_after_component(callback, *, name=None):
    add_callback(callback_map["callbacks_after_component"], callback, name=name, category="after_component")
