"""The host adapter: the only modules that import a WebUI (A1111 1.10 or Forge), each thin.

``host`` (``Extension``: callbacks, settings, routes), ``extra_network`` (the ``hyperlora`` extra
network, shared), ``a1111`` (in-memory ``network.Network`` objects), ``forge`` (UNet patcher
patches), ``pages`` and ``card_editor`` (the Extra Networks card and its editor), ``ui`` (the
accordion's gradio layout). Logic lives in ``hyperlora_ext.app``; these turn its results into host
objects. CI runs them against fakes of the host APIs (``tests/hosts``); the e2e suite against the
real hosts.

May import: the host (``modules``, ``networks``, ``network``, ``backend``, gradio), ``app`` and the
core. Nothing imports this package except ``scripts/hyperlora.py``.
"""
