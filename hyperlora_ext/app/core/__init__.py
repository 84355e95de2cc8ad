"""The service core: what every other group of ``app`` builds on.

``service`` (``HyperLoRAService``: the parts below, and the work that coordinates them) over
``model_manager`` (the loaded model, the face models, download, which checkpoint made an identity),
``identity_library`` (the identity folder and card notes), ``lora_cache`` (expanded weights and LoRA
files), ``publishing`` (identities kept as LoRA files in the Lora folder) and ``tag_resolver`` (the
tags of one pass -> weights, with stacking); ``config`` (``ServiceConfig``, read on every call);
``tags`` (the ``<hyperlora:...>`` prompt tag: the only module that knows its syntax, used by every
group, so it lives here, below all of them).

May import: the core library (``hyperlora_ext`` and its ``model``, ``photos``, ``identities``,
``download``), torch, safetensors. Never another group of ``app`` (``app.generation``, ``app.http``,
``app.panel``), never a host or ``hyperlora_ext.webui``.
"""
