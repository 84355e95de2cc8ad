"""Exceptions with messages meant for the user: what is wrong, where, and what to do."""

from __future__ import annotations


class HyperLoRAError(Exception):
    """Base class of every error this package raises on purpose."""


class CheckpointError(HyperLoRAError):
    """A HyperLoRA checkpoint folder is incomplete or inconsistent."""


class MissingModelsError(HyperLoRAError):
    """Model files are missing and may not be downloaded. ``missing`` lists (file, folder)."""

    def __init__(self, message: str, missing: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.missing = missing


class DownloadError(MissingModelsError):
    """The first-use download failed (offline, no permission, a damaged file); the message says why
    and, from ``download_models``, lists what is still missing and where it goes."""

    def __init__(self, message: str, missing: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message, missing or [])


class ImageError(HyperLoRAError):
    """An input image cannot be used (not an image, too large, unreadable)."""


class NoFaceError(HyperLoRAError):
    """No face was found in any of the input images. ``failures`` maps image name -> reason."""

    def __init__(self, message: str, failures: dict[str, str]) -> None:
        super().__init__(message)
        self.failures = failures


class UnknownIdentityError(KeyError):
    """No stored identity has this name, in any case. ``name``: the name asked for. A ``KeyError``,
    so lookups keep their contract; any other ``KeyError`` is a bug."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no identity named {self.name!r}"


class DamagedIdentityError(HyperLoRAError):
    """A stored identity's file cannot be used (damaged, foreign, a link out of its folder); the
    message names the file and says what to do (delete or re-create it)."""


class NameConflictError(HyperLoRAError):
    """A name matches several stored identities whose names differ only in case (names are
    case-insensitive); the message names them and says to rename or delete all but one."""
