"""The extension's version: one place (pyproject.toml repeats it; a test checks they match)."""

__version__ = "0.2.0"
