"""The project's own Python files, each read and walked once in a test process for every check
that reads the code: its layers, sizes, imports, dependencies and the events it names."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from tests import ROOT

PACKAGE = ROOT / "bulkrunner"


@functools.cache
def python_files(folder: Path = PACKAGE) -> tuple[Path, ...]:
    """Every ``.py`` file under ``folder``, sorted."""
    return tuple(sorted(folder.rglob("*.py")))


@functools.cache
def nodes(path: Path) -> tuple[ast.AST, ...]:
    """Every node of ``path``'s syntax tree, in ``ast.walk``'s order."""
    return tuple(ast.walk(ast.parse(path.read_text(encoding="utf-8"))))
