"""HTTP: the routes the extension adds to the WebUI's FastAPI app.

``api`` (``/hyperlora/v1``, mounted with ``--api``), ``names_route`` (``/hyperlora/ui/names`` and
``/hyperlora/ui/help`` for the page's script, mounted on every WebUI).

May import: ``app.core``, ``app.generation``, the core library, fastapi / pydantic / starlette.
Never ``app.panel``, a host or ``hyperlora_ext.webui``.
"""
