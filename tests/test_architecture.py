"""The package's import rules (each package's ``__init__`` states them, ``app``'s groups too), no import
cycles, and the typing rules mypy cannot check: ``p`` is one Protocol, a ``type: ignore`` says why.

Every ``import`` statement counts, also those inside functions (lazy imports); only imports under
``if TYPE_CHECKING:`` are left out, since they never run (annotations only).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hyperlora_ext"
HOSTS = {"modules", "modules_forge", "backend", "networks", "network", "ldm_patched", "gradio", "launch",
         "extra_networks_lora", "lora", "network_lora", "scripts"}
# Layers, lowest first: a module may import its own layer and the layers before it.
LAYERS = [
    ("foundation", {"errors", "files", "integrity", "lora", "version"}),
    ("identities", {"identities"}),
    ("photos", {"photos"}),
    ("model", {"model"}),
    ("download", {"download"}),
    ("entry points", {"cli", "__init__", "__main__"}),
    ("app", {"app"}),
    ("webui", {"webui"}),
]


# The groups of ``app`` (one sub-package each), and the other groups each may import besides its own.
APP_GROUPS = {
    "core": set(),
    "generation": {"core"},
    "http": {"core", "generation"},
    "panel": {"core", "generation"},
}


def layer_of(module: str) -> int:
    """``hyperlora_ext.model.engine`` -> the index of its layer in ``LAYERS``."""
    parts = module.split(".")
    first = parts[1] if len(parts) > 1 else "__init__"
    return next(i for i, (_, names) in enumerate(LAYERS) if first in names)


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, child.end_lineno + 1))
    return lines


def imports_in(text: str, module: str, is_package: bool = False) -> list[tuple[str, int]]:
    """(imported module, line) of every import in ``text`` (the source of ``module``) that runs,
    resolved to absolute names; ``from pkg import mod`` gives ``pkg.mod`` when that is a module."""
    tree = ast.parse(text)
    skip = _type_checking_lines(tree)
    package = module.split(".") if is_package else module.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
            continue
        base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
        target = ".".join(p for p in (base, node.module or "") if p)
        for alias in node.names:
            candidate = f"{target}.{alias.name}"
            out.append((candidate if candidate in MODULES else target, node.lineno))
    return out


def imports(path: Path) -> list[tuple[str, int]]:
    return imports_in(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


FILES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(p) for p in FILES}


def graph() -> dict[str, set[str]]:
    return {module_name(p): {m for m, _ in imports(p) if m in MODULES} for p in FILES}


def app_group(module: str) -> str | None:
    """``hyperlora_ext.app.core.service`` -> ``core``; None outside ``app`` (and for ``app`` itself)."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "app" else None


def test_every_package_says_what_lives_there_and_what_it_may_import():
    for init in PACKAGE.rglob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "May import" in doc, f"{init} must say what lives there and what it may import"


def test_only_the_host_adapter_imports_a_host():
    wrong = [f"{module_name(p)}:{line} imports {name}" for p in FILES for name, line in imports(p)
             if name.split(".")[0] in HOSTS and layer_of(module_name(p)) != len(LAYERS) - 1]
    assert not wrong, "only hyperlora_ext.webui may import the WebUI or gradio:\n" + "\n".join(wrong)


def test_layers_import_only_downwards():
    wrong = []
    for p in FILES:
        me = module_name(p)
        for name, line in imports(p):
            if name in MODULES and layer_of(name) > layer_of(me):
                wrong.append(f"{me}:{line} ({LAYERS[layer_of(me)][0]}) imports {name} ({LAYERS[layer_of(name)][0]})")
    assert not wrong, "an import goes up the layers:\n" + "\n".join(wrong)


def test_app_is_grouped_by_job():
    """Every module of ``app`` is in one of its groups, and each group is a package."""
    loose = sorted(m for m in MODULES if m.startswith("hyperlora_ext.app.") and app_group(m) not in APP_GROUPS)
    assert not loose, f"modules of app outside its groups {sorted(APP_GROUPS)}: {loose}"
    assert all((PACKAGE / "app" / group / "__init__.py").is_file() for group in APP_GROUPS)


def test_app_groups_import_only_the_groups_they_may():
    wrong = []
    for p in FILES:
        me = module_name(p)
        mine = app_group(me)
        if mine is None:
            continue
        for name, line in imports(p):
            theirs = app_group(name)
            if theirs is not None and theirs != mine and theirs not in APP_GROUPS[mine]:
                wrong.append(f"{me}:{line} ({mine}) imports {name} ({theirs})")
    assert not wrong, "an app group imports a group it may not (see APP_GROUPS):\n" + "\n".join(wrong)


def test_the_app_groups_say_what_they_may_import():
    """Each group's ``__init__`` names the groups it may import, and says it never imports the others."""
    for group, allowed in APP_GROUPS.items():
        doc = ast.get_docstring(ast.parse((PACKAGE / "app" / group / "__init__.py").read_text(encoding="utf-8")))
        may, _, never = (doc or "").partition("May import:")[2].partition("Never")
        assert all(f"app.{g}" in may for g in allowed), (group, may)
        assert all(f"app.{g}" in never for g in set(APP_GROUPS) - allowed - {group}), (group, never)


def test_every_function_that_takes_p_says_it_is_the_hosts_processing_object():
    """``p`` is the host's processing object everywhere, typed by one Protocol
    (``app.generation.processing.Processing``)."""
    wrong = []
    for path in [*FILES, PACKAGE.parent / "scripts" / "hyperlora.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                    if arg.arg == "p" and ast.unparse(arg.annotation or ast.Constant(None)) != "Processing":
                        wrong.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
    assert not wrong, "a p without the Processing annotation:\n" + "\n".join(wrong)
    protocols = [p for p in FILES if "class Processing(Protocol)" in p.read_text(encoding="utf-8")]
    assert [module_name(p) for p in protocols] == ["hyperlora_ext.app.generation.processing"]


def test_every_type_ignore_names_its_error_and_says_why():
    """``# type: ignore[code]  # reason`` on the same line: no silent ignore (mypy: pyproject.toml)."""
    pattern = re.compile(r"#\s*type:\s*ignore(?P<rest>.*)$")
    good = re.compile(r"\[[a-z-]+(, *[a-z-]+)*\] +# +\S")
    wrong = []
    for path in [*FILES, PACKAGE.parent / "scripts" / "hyperlora.py"]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found = pattern.search(line)
            if found and not good.match(found["rest"]):
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not wrong, "a type: ignore without its error code and a reason:\n" + "\n".join(wrong)


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_rules_see_lazy_and_relative_imports():
    """A checker that read only the top of a file, or missed relative imports, would pass wrongly."""
    text = ("from . import help\nfrom ..core import tags\nfrom ...model import engine\n"
            "def f():\n    from modules import shared\n")
    assert [n for n, _ in imports_in(text, "hyperlora_ext.app.panel.panel")] == [
        "hyperlora_ext.app.panel.help", "hyperlora_ext.app.core.tags", "hyperlora_ext.model.engine", "modules"]
    hidden = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .engine import X\n"
    assert [n for n, _ in imports_in(hidden, "hyperlora_ext.model.pipeline")] == ["typing"]
