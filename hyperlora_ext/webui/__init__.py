"""The host adapter: the only modules that import a WebUI (A1111 1.10 or a Forge), each thin.

``host`` (``Extension``: finds the host family by capability, registers callbacks, settings,
routes), ``extra_network`` (the ``hyperlora`` extra network and the base every adapter shares),
one adapter per family: ``a1111`` (in-memory ``network.Network`` objects), ``patcher_host`` (what
both Forge families share: patches on a clone of the UNet patcher) with ``forge`` (new Forge:
``backend.patcher.lora``) and ``ldm_patched`` (reForge, Forge Classic: ``ldm_patched.modules.lora``);
``pages`` and ``card_editor`` (the Extra Networks card and its editor), ``ui`` (the accordion's
gradio layout). Logic lives in ``hyperlora_ext.app``; these turn its results into host objects. CI
runs them against fakes of the host APIs (``tests/hosts``); the e2e suite against the real hosts.

May import: the host (``modules``, ``modules_forge``, ``networks``, ``network``, ``backend``,
``ldm_patched``, gradio), ``app`` and the core. Nothing imports this package except
``scripts/hyperlora.py``.
"""
