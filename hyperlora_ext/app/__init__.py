"""What the extension does in a WebUI, without importing one: the host-independent WebUI logic.

The service (``service`` façade over ``model_manager``, ``identity_library``, ``lora_cache``,
``tag_resolver``), the prompt tag (``tags``, the only place that knows its syntax), a generation's
activation (``activation``, ``comments``, ``likeness_infotext``, ``infotext_paste``), the panel's
handlers and help (``panel``, ``panel_help``), the HTTP API (``api``, ``names_route``), settings
and X/Y/Z axes (``settings``, ``xyz_axes``). Fully tested in CI with plain Python objects.

May import: the core (``hyperlora_ext`` and its ``model``, ``photos``, ``identities``, ``download``),
fastapi / pydantic, PIL. Never a host: ``modules``, ``modules_forge``, ``backend``, ``networks``,
``network``, ``ldm_patched``, gradio; never ``hyperlora_ext.webui``.
"""
