"""The package's layers (docs/design/architecture.md): every import of a bulkrunner module points
to its own package or to a layer below, and no modules import each other in a loop, deferred
and type-only imports included."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.sources import PACKAGE, nodes, python_files

LAYERS = {
    "model": 0,
    "errors": 0,
    "limits": 1,
    "operations": 1,
    "config": 2,
    "input": 3,
    "records": 3,
    "simulator": 3,
    "output": 4,
    "sending": 5,
    "commands": 6,
    "cli": 7,
    "api": 7,
    "__init__": 8,
    "__main__": 8,
}


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _part(module: str) -> str:
    """The top-level entry of ``bulkrunner`` that ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> Iterator[str]:
    """Every bulkrunner module ``path`` imports, wherever the import stands."""
    for node in nodes(path):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "bulkrunner":
                continue
            yield node.module
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if _exists(submodule):
                    yield submodule
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "bulkrunner")


def _exists(module: str) -> bool:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    return {_name(path): set(_imports(path)) for path in python_files()}


def test_every_entry_of_the_package_has_a_layer() -> None:
    entries = {path.stem for path in PACKAGE.iterdir() if path.suffix == ".py" or path.is_dir()}
    entries.discard("__pycache__")
    assert entries == set(LAYERS)
    assert len(entries) <= 16


def test_every_import_points_down() -> None:
    up = [
        f"{module} -> {imported}"
        for module, imported_all in sorted(_graph().items())
        for imported in sorted(imported_all)
        if _part(imported) != _part(module) and LAYERS[_part(imported)] >= LAYERS[_part(module)]
    ]
    assert up == []


def test_no_modules_import_each_other_in_a_loop() -> None:
    graph = _graph()
    loops: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            loops.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        done.add(module)
        for imported in sorted(graph.get(module, ())):
            if imported != module:
                visit(imported, [*path, module])

    for module in sorted(graph):
        visit(module, [])
    assert loops == []
