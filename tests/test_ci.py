"""The README's one test command is exactly what CI runs (``.ci/run``) and what docs/development.md shows."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _command(markdown: str, heading: str) -> str:
    section = markdown.split(heading, 1)[1]
    return re.search(r"```\n(.+?)\n```", section, re.S)[1].strip()


def test_one_test_command_everywhere():
    command = _command((ROOT / "README.md").read_text(encoding="utf-8"), "## Tests")
    assert "python3 -m mypy hyperlora_ext" in command and "--cov-fail-under=85" in command
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command == _command((ROOT / "docs" / "development.md").read_text(encoding="utf-8"), "## The test command")
