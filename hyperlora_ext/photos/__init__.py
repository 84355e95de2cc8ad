"""Photos -> face features, with no HyperLoRA weights involved.

``images`` (safe decoding to RGB, the photo limit), ``crops`` (the official face crops from 106 landmarks),
``faces`` (insightface antelopev2: detection, landmarks, ArcFace), ``likeness`` (identities vs the
faces in an image, one face each) with ``assignment`` (the one-to-one matching with the largest
total), ``photo_check`` (do a set of photos show one person?).

May import: the standard library, numpy, PIL, opencv, insightface / onnxruntime, ``identities``
and ``hyperlora_ext.errors`` / ``files``. Never ``model`` or any WebUI layer.
"""
