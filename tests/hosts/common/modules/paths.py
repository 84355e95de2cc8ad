"""Fake of ``modules/paths.py`` (A1111 v1.10.1@82a973c and Forge@dfdcbab): ``models_path``, the WebUI's models
folder (``--models-dir`` or ``<data dir>/models``); set by ``tests/webui/conftest.py``."""

models_path = ""
