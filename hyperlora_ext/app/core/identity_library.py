"""``IdentityLibrary``: the user's named identities: create from photos, mix, look up, rename,
delete, and the Extra Networks card notes that follow an identity (``<identities>/NAME.json``).

The folder is ``ServiceConfig.identity_folder``, read through ``identities.store.IdentityStore``
(names sanitised, files written atomically, several processes at once).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable, Sequence

from ...files import path_in, safe_name, same_entry
from ...identities.algebra import combine, parse_mix
from ...identities.identity import Identity
from ...identities.store import IdentityStore
from ...model.pipeline import Prediction, predict_checked
from ...photos.images import ImageSource
from ...photos.photo_check import PhotoCheck
from .config import Progress, ServiceConfig, no_progress
from .model_manager import ModelManager

log = logging.getLogger(__name__)
USER_METADATA_SUFFIX = ".json"  # the host's ExtraNetworksPage user metadata beside the file


class IdentityLibrary:
    def __init__(self, config: Callable[[], ServiceConfig], models: ModelManager) -> None:
        self._config = config
        self._models = models
        self._store: IdentityStore | None = None

    @property
    def store(self) -> IdentityStore:
        """The store of the configured folder (a new one when the setting changes)."""
        folder = Path(self._config().identity_folder)
        if self._store is None or self._store.folder != folder:
            self._store = IdentityStore(folder)
        return self._store

    def free_name(self, name: str, overwrite: bool = False) -> str:
        """``name`` sanitised, spelled as the identity it would overwrite (names are case-insensitive);
        ``FileExistsError`` when an identity has it and ``overwrite`` is off, ``ValueError`` when
        nothing usable remains of it, ``NameConflictError`` as ``IdentityStore.resolve``."""
        name = safe_name(name)
        taken = self.store.resolve(name)
        if taken is not None and not overwrite:
            raise FileExistsError(f"an identity named {taken!r} already exists; choose another name, "
                                  "or delete or overwrite it")
        return taken or name

    def create_checked(self, images: Sequence[ImageSource], name: str, variant: str | None = None,
                       remove_background: bool = True, grayscale: bool = False,
                       image_names: Sequence[str] | None = None, overwrite: bool = False,
                       progress: Progress = no_progress, drop_flagged: bool = False
                       ) -> tuple[Prediction, PhotoCheck]:
        """Photos of one person -> stored identity ``name`` (sanitised) and the photo-set check
        (``drop_flagged``: photos that look like someone else are left out). Raises ``ValueError``
        for a bad name, ``FileExistsError`` for a taken one (unless ``overwrite``),
        ``NoFaceError`` when no photo has a usable face, ``MissingModelsError``. The prediction's
        timings include a first use's "download" and "model load"."""
        name = self.free_name(name, overwrite)
        if not images:
            raise ValueError("no images given: upload one or more photos of the face")
        with self._models.lock:
            loading: dict[str, float] = {}
            model = self._models.model(variant, progress, loading)
            progress(0.4, f"Finding faces in {len(images)} image(s)")
            prediction, check = predict_checked(model, list(images), list(image_names) if image_names else None,
                                                drop_flagged, remove_background=remove_background,
                                                grayscale=grayscale, name=name)
            prediction.timings = {**loading, **prediction.timings}
            progress(0.9, "Saving identity")
            self.store.save(prediction.identity, name, overwrite=overwrite)
            return prediction, check

    def mix(self, expression: str, name: str, overwrite: bool = False) -> Identity:
        """Store ``combine(expression)`` over the stored identities as ``name`` (a mix such as
        ``0.6*alice + 0.4*bob`` or a slider ``smiling - neutral``). Raises ``HyperLoRAError`` for
        a bad expression or unknown names, ``FileExistsError`` / ``ValueError`` as ``free_name``."""
        name = self.free_name(name, overwrite)
        expr = parse_mix(expression)
        identities = {}
        for term, _ in expr.terms:
            try:
                identities[term] = self.get(term)
            except KeyError:
                continue  # combine names every unknown term
        identity = combine(expr, identities, name)
        self.store.save(identity, name, overwrite=overwrite)
        return self.get(name)

    def get(self, name: str) -> Identity:
        """Stored identity ``name``; ``KeyError`` if unknown, ``HyperLoRAError`` if damaged."""
        return self.store.get(name)

    def find_by_hash(self, identity_hash: str) -> str | None:
        """Name of the stored identity with this hash, or None."""
        good, _ = self.store.load_all()
        return next((n for n, i in good.items() if i.hash == identity_hash), None)

    def rename(self, old: str, new: str) -> str:
        """Rename identity ``old`` (``store.rename``); its Extra Networks card notes follow."""
        stored = self.store.resolve(old)
        renamed = self.store.rename(old, new)
        if stored is not None and stored != renamed:
            self._move_user_metadata(stored, renamed)
        return renamed

    def delete(self, name: str) -> str:
        """Delete identity ``name`` (``store.delete``) and its Extra Networks card notes."""
        gone = self.store.delete(name)
        try:
            self.user_metadata_path(gone).unlink(missing_ok=True)
        except (OSError, ValueError):
            log.warning("HyperLoRA: could not remove the card notes of %r", gone, exc_info=True)
        return gone

    def user_metadata_path(self, name: str) -> Path:
        """``<identities>/NAME.json``: the description and notes the Extra Networks card editor keeps."""
        return path_in(self._config().identity_folder, name, USER_METADATA_SUFFIX)

    def _move_user_metadata(self, old: str, new: str) -> None:
        try:
            src, dst = self.user_metadata_path(old), self.user_metadata_path(new)
            if same_entry(src, dst):
                os.rename(src, dst)  # another spelling of the name on a case-insensitive filesystem
            elif src.is_file() and not dst.exists():
                src.replace(dst)
        except (OSError, ValueError):
            log.warning("HyperLoRA: could not move the card notes of %r to %r", old, new, exc_info=True)
