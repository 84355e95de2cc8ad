"""The panel: what the HyperLoRA accordion, the card editor and the settings page do, without gradio.

``panel`` (``Panel``: every button's handler, returning status HTML, never raising), ``help``
(the hover help of every control), ``settings`` (the Settings tab's options -> ``ServiceConfig``),
``xyz_axes`` (the X/Y/Z plot axes).

May import: ``app.core``, ``app.generation``, the core library, PIL. Never ``app.http``, a host
(gradio included) or ``hyperlora_ext.webui``.
"""
