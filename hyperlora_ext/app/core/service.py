"""``HyperLoRAService``: the parts of the service, and the work that needs more than one of them.

Its parts are attributes, each the one owner of its concept, used directly by every caller:
``models`` (``ModelManager``: the loaded model, the face models, download, which checkpoint made an
identity), ``identities`` (``IdentityLibrary``: the identity folder, lookups, card notes), ``loras``
(``LoRACache``: expanded weights and LoRA files) and ``publisher`` (``LoRAPublisher``: identities kept as
LoRA files in the host's Lora folder, once the host called ``publish_to``). The service itself does
only what coordinates them: every change to the identities (create, mix, rename, delete) also
updates the published LoRA files; a generation's tags are resolved with the identities and the LoRA
cache (``resolve``); *Save as LoRA* writes a stored identity with the configured weight
(``save_lora``); the likeness runs on the face models under the models' lock (``likeness``). Host
adapters only turn the weights it returns into the host's own LoRA objects. Settings are read
through ``config()`` on every call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ContextManager, Sequence

from ...errors import HyperLoRAError
from ...identities.identity import Identity
from ...model.pipeline import Prediction
from ...photos.images import ImageSource
from ...photos.likeness import LikenessScore, likeness
from ...photos.photo_check import PhotoCheck
from .config import Progress, ServiceConfig, no_progress
from .identity_library import IdentityLibrary
from .lora_cache import LoRACache, LoRAWeights
from .model_manager import ModelManager
from .publishing import LoRAPublisher
from .tag_resolver import Resolution, resolve_tags
from .tags import TagRequest

__all__ = ["HyperLoRAService", "LoRAWeights", "Progress", "Resolution", "ServiceConfig"]


class HyperLoRAService:
    """Thread-safe; GPU work happens under the caller's queue lock (hosts) and ``models.lock``.

    ``free_memory(bytes)``: optional host hook called before the model goes to a GPU.
    """

    def __init__(self, config: Callable[[], ServiceConfig],
                 free_memory: Callable[[int], None] | None = None) -> None:
        self._config = config
        self.models = ModelManager(config, free_memory)
        self.identities = IdentityLibrary(config, self.models)
        self.loras = LoRACache(self.models)
        self.publisher: LoRAPublisher | None = None  # the host's Lora folder is needed: ``publish_to``

    @property
    def config(self) -> ServiceConfig:
        return self._config()

    # ---- identity changes (IdentityLibrary, then LoRAPublisher) ----------------------------------
    def create_identity(self, images: Sequence[ImageSource], name: str, variant: str | None = None,
                        remove_background: bool = True, grayscale: bool = False,
                        image_names: Sequence[str] | None = None, overwrite: bool = False,
                        progress: Progress = no_progress, drop_flagged: bool = False) -> Prediction:
        """Photos of one person -> stored identity ``name``; ``create_checked`` without the check."""
        return self.create_checked(images, name, variant, remove_background, grayscale, image_names, overwrite,
                                   progress, drop_flagged)[0]

    def create_checked(self, images: Sequence[ImageSource], name: str, variant: str | None = None,
                       remove_background: bool = True, grayscale: bool = False,
                       image_names: Sequence[str] | None = None, overwrite: bool = False,
                       progress: Progress = no_progress, drop_flagged: bool = False
                       ) -> tuple[Prediction, PhotoCheck]:
        pred, check = self.identities.create_checked(images, name, variant, remove_background, grayscale,
                                                     image_names, overwrite, progress, drop_flagged)
        self._publish(lambda p: p.saved(pred.identity))
        return pred, check

    def mix(self, expression: str, name: str, overwrite: bool = False) -> Identity:
        identity = self.identities.mix(expression, name, overwrite)
        self._publish(lambda p: p.saved(identity))
        return identity

    def rename(self, old: str, new: str) -> str:
        before = self._stored_hash(old)
        renamed = self.identities.rename(old, new)
        self._publish(lambda p: p.renamed(old, before or "", self.identities.get(renamed)))
        return renamed

    def delete(self, name: str) -> str:
        before = self._stored_hash(name)
        gone = self.identities.delete(name)
        self._publish(lambda p: p.deleted(gone, before or ""))
        return gone

    # ---- published LoRA files (LoRAPublisher) ----------------------------------------------------
    def publish_to(self, lora_dir: Callable[[], Path], gpu_lock: Callable[[], ContextManager],
                   changed: Callable[[], None]) -> LoRAPublisher:
        """Keep every identity also as a LoRA file in ``lora_dir()`` while the setting is on (the host's Lora
        folder, its re-entrant GPU lock, and what re-reads its LoRA list)."""
        self.publisher = LoRAPublisher(self._config, self.identities, self.loras, lora_dir, gpu_lock, changed)
        return self.publisher

    def publish_note(self, name: str) -> str:
        """What publishing did with identity ``name`` in the last change ("" when off or nothing)."""
        if self.publisher is None or not self.publisher.enabled:
            return ""
        return self.publisher.notes.get(name, "")

    def _publish(self, event: Callable[[LoRAPublisher], str]) -> None:
        if self.publisher is not None and self.publisher.enabled:
            event(self.publisher)

    def _stored_hash(self, name: str) -> str | None:
        """The stored identity's hash before a change (None when it cannot be read: then any published
        file of that name is left alone)."""
        if self.publisher is None or not self.publisher.enabled:
            return None
        try:
            return self.identities.get(name).hash
        except (KeyError, HyperLoRAError):
            return None

    def likeness(self, image: ImageSource, identities: Sequence[Identity]) -> list[LikenessScore]:
        """Likeness of ``identities`` (named by ``.name``) in ``image``, each on its own face (one face
        per identity, largest total similarity, faces numbered left to right; ``photos.likeness``),
        with the face models' analyzer (loaded if needed; no hypernetwork is loaded)."""
        if not identities:
            return []
        with self.models.lock:
            return likeness(self.models.face_models().analyzer(), image, identities)

    # ---- LoRA weights (IdentityLibrary and LoRACache) --------------------------------------------
    def resolve(self, requests: Sequence[TagRequest]) -> Resolution:
        """Tags of one generation -> weights, warnings and infotext entries (``resolve_tags``)."""
        return resolve_tags(requests, self.identities, self.loras)

    def save_lora(self, name: str, lora_dir: str | Path, file_name: str | None = None, base: float = 0.0,
                  overwrite: bool = False) -> Path:
        """Write identity ``name`` as a LoRA file and its card (``LoRACache.save``; a click on the card inserts
        the configured default weight); ``KeyError`` if unknown."""
        return self.loras.save(self.identities.get(name), lora_dir, file_name, base, overwrite,
                               weight=self.config.default_weight)
