"""One version: ``hyperlora_ext.__version__``; pyproject.toml and ``--version`` say the same."""

import re
from pathlib import Path

import tomllib

import hyperlora_ext
from hyperlora_ext.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_matches_the_package_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == hyperlora_ext.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", hyperlora_ext.__version__)


def test_changelog_has_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[?{re.escape(hyperlora_ext.__version__)}\]?", changelog, re.M), \
        "CHANGELOG.md needs a section for the current version"


def test_cli_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"sd-webui-hyperlora {hyperlora_ext.__version__}"
