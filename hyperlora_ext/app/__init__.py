"""What the extension does in a WebUI, without importing one: the host-independent WebUI logic.

Four groups, one sub-package each, lowest first:

* ``core``: the service (``HyperLoRAService`` and its parts: models, identities, LoRA weights,
  published LoRA files), its settings object (``config``), the tag syntax (``tags``) and what the host
  lends the app (``host_hooks``).
* ``generation``: hooks on the host's processing object ``p`` during a generation: activation of the
  prompt tags, inner passes, the likeness infotext, comments, infotext paste.
* ``http``: the HTTP API and the names route of the page's script.
* ``panel``: the accordion's handlers and hover help, the settings, the X/Y/Z plot axes.

A group imports the groups before it in this list, except that ``http`` and ``panel`` never import
each other (each ``__init__`` says what it may import; ``tests/test_architecture.py`` enforces it).
Fully tested in CI with plain Python objects.

May import: the core (``hyperlora_ext`` and its ``model``, ``photos``, ``identities``, ``download``),
fastapi / pydantic, PIL. Never a host: ``modules``, ``modules_forge``, ``backend``, ``networks``,
``network``, ``ldm_patched``, gradio; never ``hyperlora_ext.webui``.
"""
