"""The shape of the package, checked: the core and the renderers stay pure, and the world is
read in one place (STYLE.md: a pure core, thin doors, one run context)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "builder"

# Values and decisions: no engine, no network, no child processes, no git.
CORE = (
    "refs",
    "dockerfiles",
    "ignore",
    "config",
    "model",
    "graph",
    "changes",
    "keys",
    "plan",
    "bake",
    "reports",
    "ci",
    "render",
    "render.text",
    "render.data",
    "render.github",
    "render.graphs",
)
# The doors: the only modules that may reach each outside thing.
DOORS = {
    "python_on_whales": {"builder.buildx"},
    "docker": {"builder.registry"},
    "requests": {"builder.registry"},
    "subprocess": {"builder.proc"},
}


def imported_by(module: str) -> set[str]:
    """Every module a fresh interpreter holds after importing `module`."""
    code = f"import sys, json, builder.{module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize("module", CORE)
def test_the_core_and_the_renderers_import_no_door(module: str) -> None:
    loaded = imported_by(module)
    doors = {"builder.buildx", "builder.registry", "builder.git", "builder.proc"}
    assert not loaded & doors, f"builder.{module} pulls in {sorted(loaded & doors)}"
    for library in ("python_on_whales", "docker", "requests"):
        assert library not in loaded, f"builder.{module} imports {library}"


def test_render_imports_neither_python_on_whales_nor_docker() -> None:
    loaded = imported_by("render")
    loaded |= imported_by("render.text") | imported_by("render.github")
    assert "python_on_whales" not in loaded
    assert "docker" not in loaded


def top_level_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    return ".".join(relative.parts).removesuffix(".__init__")


@pytest.mark.parametrize("library", sorted(DOORS))
def test_one_door_per_outside_thing(library: str) -> None:
    users = {
        module_name(path) for path in PACKAGE.rglob("*.py") if library in top_level_imports(path)
    }
    assert users <= DOORS[library], f"{library} is imported by {sorted(users - DOORS[library])}"


def test_only_the_edge_reads_the_environment() -> None:
    """The CLI and the run context read the environment; the CI facts module parses the
    variables handed to it. Everything else is handed what it needs."""
    # The git door defaults to the process's environment when a test hands it none.
    allowed = {"builder.cli", "builder.context", "builder.ci", "builder.git"}
    readers = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "os.environ" in text or "os.getenv" in text:
            readers.add(module_name(path))
    assert readers <= allowed, f"os.environ read in {sorted(readers - allowed)}"
