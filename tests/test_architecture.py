"""The layers stay layers: the CLI and the app use only the public surface (`assistant`), and no two modules of the
package import each other, directly or round a loop. Read from the source with `ast` (nothing is imported), so
function-level and `if TYPE_CHECKING:` imports count too: a lazy import is still a dependency."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import assistant

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "assistant"
STORE_LAYER = "assistant.index"  # one unit here: its modules are the store's internals (docs/architecture.md)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, package: str) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, names) of every import in a file, wherever it is (function bodies included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, module, [alias.name for alias in node.names]))
    return found


def surface_violations(path: Path, package: str) -> list[str]:
    """Imports of an `assistant.*` submodule (the app's own `assistant.ui.*` modules allowed)."""
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return [f"{shown}:{line}: imports {module}" for line, module, _ in imported(path, package)
            if module.startswith("assistant.") and not module.startswith("assistant.ui")]


def test_the_cli_and_the_app_import_only_the_public_surface() -> None:
    files = [PACKAGE / "cli.py", *sorted((ROOT / "ui").glob("*.py"))]
    assert len(files) > 10
    violations = [v for f in files for v in surface_violations(f, "assistant" if f.name == "cli.py" else "ui")]
    assert violations == []


def test_the_surface_check_catches_a_submodule_import(tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.py"
    leaky.write_text("from assistant import Assistant\nfrom assistant.ui.state import Scope\n\n"
                     "def f():\n    from assistant.llm import describe_error\n")
    assert [v.split(": ", 1)[1] for v in surface_violations(leaky, "ui")] == ["imports assistant.llm"]


def test_every_public_name_resolves_and_is_listed() -> None:
    """Each name of `assistant` is what its home module defines, never a submodule that took its place."""
    assert sorted(assistant.__all__) == sorted(assistant._HOMES)
    submodules = ({path.stem for path in PACKAGE.glob("*.py")}
                  | {path.name for path in PACKAGE.iterdir() if path.is_dir()})
    assert set(assistant.__all__) & submodules == set()
    wrong = [name for name in assistant.__all__ if getattr(assistant, name, None) is None
             or isinstance(getattr(assistant, name), types.ModuleType)]
    assert wrong == []


def import_graph(collapse: str = STORE_LAYER) -> dict[str, set[str]]:
    """Module -> the package modules it imports; the modules under `collapse` are one node."""
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}

    def node(module: str) -> str:
        return collapse if module.startswith(collapse + ".") else module

    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for _, module, names in imported(path, package):
            submodules = [f"{module}.{n}" for n in names if f"{module}.{n}" in paths]
            targets |= set(submodules) if submodules and len(submodules) == len(names) else {module}
        graph.setdefault(node(name), set()).update(node(t) for t in targets if t in paths and node(t) != node(name))
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import loop of the graph (empty when it has none), by depth-first search."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str]:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[module] = 2
        path.pop()
        return []

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return []


def test_the_package_has_no_import_cycles() -> None:
    graph = import_graph()
    assert {"assistant.api", "assistant.evaluate", "assistant.index", "assistant.topics"} <= set(graph)
    assert cycle(graph) == [], " -> ".join(cycle(graph))


def test_the_cycle_check_finds_a_loop() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": {"c"}, "d": {"a", "c"}}) == []
