"""Reading a built ``gr.Blocks`` (gradio 4.40) the way the browser would drive it: the components by
``elem_id`` and the functions their events run, so a test calls exactly what gradio would call."""

from __future__ import annotations


def by_elem_id(demo, elem_id: str):
    [block] = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id]
    return block


def event(demo, component, name: str = "click", output=None):
    """The function ``component``'s ``name`` event runs (exactly one; with ``output``, the one that
    updates that component)."""
    [fn] = [f for f in demo.fns.values() if (component._id, name) in f.targets
            and (output is None or any(o._id == output._id for o in f.outputs))]
    return fn


def then(demo, fn):
    """The functions set to run after ``fn`` (``.then``)."""
    index = next(k for k, f in demo.fns.items() if f is fn)
    return [f for f in demo.fns.values() if f.trigger_after == index]
