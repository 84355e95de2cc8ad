"""Generation hooks on the host's processing object ``p``.

``activation`` (one activation of the ``hyperlora`` extra network: tags -> weights, trigger words,
infotext; every problem a comment), ``inner_passes`` (passes other extensions run inside a
generation, such as ADetailer's), ``likeness_infotext`` (each final image's likeness), ``comments``
(problems told without failing the generation), ``infotext_paste`` (a pasted infotext's tags
pointed at renamed identities).

May import: ``app.core`` and the core library. Never ``app.http``, ``app.panel``, a host or
``hyperlora_ext.webui``.
"""
