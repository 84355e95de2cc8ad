"""What the HyperLoRA accordion's buttons do, as plain functions (no gradio here).

``ui.py`` lays out the components and maps these results to component updates; the HTTP API
uses the same service calls. Every handler returns a status message instead of raising, so
the UI never shows a traceback: expected problems get their message, anything else a message
naming what failed (with the traceback logged to the console).
"""

from __future__ import annotations

import html
import logging
import os
from typing import Sequence

from PIL import Image

from ...errors import HyperLoRAError, NoFaceError
from ...files import name_key
from ...identities.identity import Identity
from ...photos.images import photo_count_problem
from ...photos.photo_check import PhotoCheck
from ..core.host_hooks import HostHooks
from ..core.service import HyperLoRAService, Progress
from ..core.tags import TAG, format_tag, put_tags_per_face

log = logging.getLogger(__name__)
# The per-face text of "Insert for ADetailer": neutral (any person, any prompt), so that a face pass
# never inherits the main prompt, whose description and tags cover every person in the picture.
ADETAILER_FACE_TEXT = "photo of a face"
ADETAILER_SORT_HINT = ("ADetailer handles faces in its 'Sort bounding boxes by' order (Settings > ADetailer); "
                       "its default keeps the detector's order: choose 'Position (left to right)'.")


def message(text: str, ok: bool = True) -> str:
    colour = "var(--body-text-color)" if ok else "#d33"
    return f'<div class="hyperlora-status" style="color:{colour}">{html.escape(text)}</div>'


def code_html(code: str) -> str:
    """``code`` (e.g. a tag) as escaped HTML, to copy from a status line."""
    return f"<code>{html.escape(code)}</code>"


def message_with_code(text: str, code: str) -> str:
    """A status line followed by ``code`` to copy."""
    return message(text)[:-len("</div>")] + f"<br>{code_html(code)}</div>"


def failure(action: str, exc: Exception) -> str:
    """Status HTML for an unexpected exception; logs its traceback. Call from an ``except`` block."""
    log.exception("HyperLoRA: %s failed", action)
    return message(f"{action} failed: {type(exc).__name__}: {exc} (details in the console)", ok=False)


def upload_path(item: object) -> tuple[str, str]:
    """(path, original file name) of one gradio upload: gradio 3 gives a tempfile wrapper with
    ``name``/``orig_name``, gradio 4 a path string."""
    path = str(getattr(item, "name", item))
    return path, os.path.basename(str(getattr(item, "orig_name", None) or path))  # 3.41's orig_name is a path


def photo_check_text(check: PhotoCheck) -> str:
    """``photo check (similarity to the other photos): a.png 0.81, b.png 0.12 (looks like someone else)``."""
    parts = [f"{p.name} {p.similarity:.2f}" + (" (looks like someone else)" if p.flagged else "")
             for p in check.photos]
    return "photo check (similarity to the other photos): " + ", ".join(parts)


def captioned(crops: list[Image.Image], check: PhotoCheck, dropped: bool) -> list[tuple[Image.Image, str]]:
    """Crops with their photo's similarity as the gallery caption (crops follow the used photos)."""
    used = [p for p in check.photos if not (dropped and p.flagged)]
    if len(used) != len(crops):
        return [(c, "") for c in crops]
    return [(c, f"{p.name}: {p.similarity:.2f}" + (" (flagged)" if p.flagged else "")) for c, p in zip(crops, used)]


def identity_facts(identity: Identity, default_weight: float) -> list[tuple[str, str]]:
    """(label, value) rows describing ``identity`` for the card editor's table (plain text)."""
    rows = [("Tag:", format_tag(identity.name, default_weight)), ("Model:", identity.variant),
            ("Identity hash:", identity.hash), ("Created:", identity.created or "unknown")]
    if identity.parents:
        kind = "Slider of:" if identity.is_slider else "Mix of:"
        rows.append((kind, ", ".join(f"{p.name} ({p.factor:+g})" for p in identity.parents)))
    else:
        rows.append(("Made from:", ", ".join(identity.source_names) or "unknown photos"))
    rows.append(("Base-LoRA:", "yes" if identity.has_base else "no"))
    return rows


class Panel:
    def __init__(self, service: HyperLoRAService, hooks: HostHooks) -> None:
        self.service = service
        self.hooks = hooks

    def _with_note(self, text: str, name: str) -> str:
        """``text`` and what publishing did for identity ``name`` (setting: keep identities as LoRA files)."""
        note = self.service.publish_note(name)
        return f"{text} — {note}" if note else text

    def publishing_status(self) -> str:
        """Status HTML of "keep identities as LoRA files": a publication running or finished in this
        process, or, with the setting off, the files that stay ("" when there is nothing to say)."""
        publisher = self.service.publisher
        if publisher is None:
            return ""
        text = publisher.status.text()
        if not publisher.enabled:
            left = publisher.published_files()
            text = (f"Identities are not kept as LoRA files (setting off); the {len(left)} published file(s) in "
                    f"{publisher.folder} stay." if left else "")
        return message(text) if text else ""

    def names(self) -> list[str]:
        """Stored identity names ([] when the folder cannot be read; logged)."""
        try:
            return self.service.identities.store.names()
        except Exception:
            log.exception("HyperLoRA: listing the identities failed")
            return []

    def create(self, files: Sequence[object] | None, name: str, variant: str | None, remove_background: bool,
               grayscale: bool, overwrite: bool, progress: Progress, drop_flagged: bool = False
               ) -> tuple[list[tuple[Image.Image, str]], str, str | None]:
        """Uploads -> stored identity. Returns (face crops with their photo-check caption, status
        HTML, the new identity's name); ``drop_flagged`` leaves out photos of someone else."""
        if not files:
            return [], message("Upload one or more photos of the face first.", ok=False), None
        if not (name or "").strip():
            return [], message("Give the identity a name (it becomes the tag <hyperlora:NAME>).", ok=False), None
        problem = photo_count_problem(len(files))  # the API's limit too, before waiting for the WebUI
        if problem:
            return [], message(problem, ok=False), None
        paths = [upload_path(f) for f in files]
        try:
            progress(0.0, "Waiting for the WebUI (a generation running, or the SD model still loading after start-up)")
            pred, check = self.hooks.create_waiting(lambda: self.service.create_checked(
                [p for p, _ in paths], name, variant or None, remove_background, grayscale,
                image_names=[n for _, n in paths], overwrite=overwrite, progress=progress,
                drop_flagged=drop_flagged))
        except NoFaceError as exc:
            return [], message(str(exc), ok=False), None
        except (HyperLoRAError, ValueError, FileExistsError, OSError) as exc:
            return [], message(str(exc), ok=False), None
        except Exception as exc:
            return [], failure("Creating the identity", exc), None
        identity = pred.identity
        tag = format_tag(identity.name, self.service.config.default_weight)
        text = (f"Created {identity.name!r} from {len(pred.faces)} face(s) in "
                f"{sum(pred.timings.values()):.2f} s. Tag: {tag}")
        if pred.skipped:
            text += " — skipped: " + "; ".join(f"{k}: {v}" for k, v in pred.skipped.items())
        if check.photos:
            text += " — " + photo_check_text(check)
        return captioned(identity.crops, check, drop_flagged), message(self._with_note(text, identity.name)), \
            identity.name

    def mix(self, expression: str, name: str, overwrite: bool) -> tuple[str, str | None]:
        """Expression (``0.6*alice + 0.4*bob`` or ``smiling - neutral``) -> stored identity.
        Returns (status HTML, the new identity's name or None)."""
        if not (name or "").strip():
            return message("Give the mix or slider a name.", ok=False), None
        try:
            identity = self.service.mix(expression, name, overwrite)
        except (HyperLoRAError, ValueError, FileExistsError, OSError) as exc:
            return message(str(exc), ok=False), None
        except Exception as exc:
            return failure("Mixing the identities", exc), None
        kind = "slider" if identity.is_slider else "mix"
        tag = format_tag(identity.name, self.service.config.default_weight)
        text = f"Created {kind} {identity.name!r} = {expression.strip()}. Tag: {tag}"
        return message(self._with_note(text, identity.name)), identity.name

    def show(self, name: str | None) -> tuple[list[Image.Image], str]:
        if not name:
            return [], message("No identity selected." if self.names() else "No identities yet: create one above.")
        try:
            identity = self.service.identities.get(name)
        except KeyError:
            return [], message(f"No identity named {name!r} (refresh the list).", ok=False)
        except HyperLoRAError as exc:
            return [], message(str(exc), ok=False)
        except Exception as exc:
            return [], failure(f"Reading identity {name!r}", exc)
        base = ", has Base-LoRA" if identity.has_base else ""
        text = (f"{identity.name}: {identity.variant}, hash {identity.hash}{base}, made {identity.created} "
                f"from {', '.join(identity.source_names) or 'unknown photos'}")
        return list(identity.crops), message(text)

    def save_lora(self, name: str | None, file_name: str, base: float, overwrite: bool) -> str:
        if not name:
            return message("Select an identity first.", ok=False)
        try:
            with self.hooks.hold_gpu():
                path = self.service.save_lora(name, self.hooks.lora_dir(), file_name or None, base, overwrite)
            self.hooks.lora_saved(path)
        except KeyError:
            return message(f"No identity named {name!r}.", ok=False)
        except (HyperLoRAError, ValueError, FileExistsError, OSError) as exc:
            return message(str(exc), ok=False)
        except Exception as exc:
            return failure("Saving the LoRA", exc)
        return message(f"Saved {path}. Use it as <lora:{path.stem}:{self.service.config.default_weight:g}> "
                       "(with the trigger words fcsks fxhks fhyks).")

    def rename(self, name: str | None, new_name: str) -> tuple[str, str | None]:
        if not name:
            return message("Select an identity first.", ok=False), None
        try:
            new = self.service.rename(name, new_name)
        except KeyError:
            return message(f"No identity named {name!r}.", ok=False), name
        except (HyperLoRAError, ValueError, FileExistsError, OSError) as exc:
            return message(str(exc), ok=False), name
        except Exception as exc:
            return failure("Renaming the identity", exc), name
        text = f"Renamed {name!r} to {new!r}; update prompts that use <{TAG}:{name}>."
        return message(self._with_note(text, new)), new

    def delete(self, name: str | None, confirmed: bool) -> tuple[str, str | None]:
        if not name:
            return message("Select an identity first.", ok=False), None
        if not confirmed:
            return message(f"Tick 'confirm' to delete {name!r}.", ok=False), name
        try:
            gone = self.service.delete(name)
        except KeyError:
            return message(f"No identity named {name!r}.", ok=False), None
        except (HyperLoRAError, OSError) as exc:
            return message(str(exc), ok=False), name
        except Exception as exc:
            return failure("Deleting the identity", exc), name
        return message(self._with_note(f"Deleted {gone!r}.", gone)), None

    def adetailer_prompt(self, names: list[str] | None, weight: float, base: float, current: str | None
                         ) -> tuple[str | None, str]:
        """*Insert for ADetailer*: identities picked in order (the first for the leftmost face) ->
        ADetailer's per-face prompt, ``<hyperlora:alice:0.85> photo of a face [SEP] <hyperlora:bob:0.85>
        photo of a face`` (``tags.put_tags_per_face``: text already in ``current`` is kept, part by
        part). ``current``: ADetailer's first prompt box, None when ADetailer is not installed.
        Returns (the new text for that box, None to leave it; status HTML, with the text to copy
        when there is no box)."""
        picked = [n for n in (names or []) if n]
        if not picked:
            return None, message("Pick one identity per face first, in order: the first for the leftmost face.",
                                 ok=False)
        known = {name_key(n): n for n in self.names()}
        missing = [n for n in picked if name_key(n) not in known]
        if missing:
            return None, message(f"No identity named {', '.join(map(repr, missing))} (refresh the list).", ok=False)
        picked = [known[name_key(n)] for n in picked]
        text = put_tags_per_face(current or "", picked, weight, base, ADETAILER_FACE_TEXT)
        faces = ", ".join(f"face {i} {n}" for i, n in enumerate(picked, 1))
        if current is None:
            return None, message_with_code(f"ADetailer is not installed here: copy this into its prompt ({faces}, "
                                           f"left to right). {ADETAILER_SORT_HINT}", text)
        return text, message(f"Wrote one part per face into ADetailer's prompt (1st tab): {faces}, left to right. "
                             f"Enable ADetailer with a face model. {ADETAILER_SORT_HINT}")
