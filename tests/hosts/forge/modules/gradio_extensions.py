"""Fake of Forge@dfdcbab ``modules/gradio_extensions.py``: how Forge runs extension code written for
gradio 3 on its gradio 4.40.

* every component and layout with events accepts ``tooltip=`` (kept as ``webui_tooltip``; gradio 4.40
  has no tooltips) and ``source=`` (-> ``sources=[source]``); any other keyword argument its
  gradio 4 signature lacks is dropped with a ``GradioDeprecationWarning``;
* its event listeners (``click``, ``change``, ``select``...) and a dependency's ``then`` accept
  ``_js=`` for ``js=``;
* ``gr.Box`` is ``gr.Group``.

Importing the module applies them, as Forge's start-up does; ``undo()`` takes them back, so that a
test of the other host does not see them (Forge itself never undoes them). Left out: the
``before_component`` / ``after_component`` callbacks and CSS class names it adds to components.
"""

import functools
import inspect
import warnings

import gradio as gr


class GradioDeprecationWarning(DeprecationWarning):
    pass


_undo = []  # (object, attribute, the value before, whether it had one)


def _set(obj, name, value):
    _undo.append((obj, name, obj.__dict__.get(name), name in obj.__dict__))
    setattr(obj, name, value)


def _accept_js(listener):
    @functools.wraps(listener)
    def wrapped(*args, **kwargs):
        if "_js" in kwargs:
            kwargs["js"] = kwargs.pop("_js")
        return listener(*args, **kwargs)
    return wrapped


def _repair(cls):
    if not getattr(cls, "EVENTS", None):
        return
    original = cls.__init__
    allowed = inspect.signature(original).parameters

    @functools.wraps(original)
    def __init__(self, *args, tooltip=None, source=None, **kwargs):
        if source:
            kwargs["sources"] = [source]
        for key in [k for k in kwargs if k not in allowed]:
            warnings.warn(f"unexpected argument for {cls.__name__}: {key}", GradioDeprecationWarning, stacklevel=2)
            del kwargs[key]
        original(self, *args, **kwargs)
        self.webui_tooltip = tooltip
        for event in self.EVENTS:
            setattr(self, str(event), _accept_js(getattr(self, str(event))))

    _set(cls, "__init__", __init__)


class Dependency(gr.events.Dependency):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.then = _accept_js(self.then)


for _name in sorted(set(gr.components.__all__ + gr.layouts.__all__)):
    _cls = getattr(gr, _name, None)
    if isinstance(_cls, type):
        _repair(_cls)
_set(gr.events, "Dependency", Dependency)
_set(gr, "Box", gr.Group)


def undo():
    while _undo:
        obj, name, value, had = _undo.pop()
        if had:
            setattr(obj, name, value)
        else:
            delattr(obj, name)
