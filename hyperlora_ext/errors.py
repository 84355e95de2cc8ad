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
