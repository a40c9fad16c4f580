"""The package stays one a newcomer can hold: no module over 400 lines, no function over 80."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.sources import PACKAGE, nodes, python_files

MOST_LINES = 400
MOST_FUNCTION_LINES = 80


def _modules() -> list[tuple[str, Path]]:
    return [(str(path.relative_to(PACKAGE)), path) for path in python_files()]


def test_no_module_is_over_400_lines() -> None:
    long = {
        name: lines
        for name, path in _modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MOST_LINES
    }
    assert long == {}


def test_no_function_is_over_80_lines() -> None:
    long: dict[str, int] = {}
    for name, path in _modules():
        for node in nodes(path):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                assert node.end_lineno is not None
                if (lines := node.end_lineno - start + 1) > MOST_FUNCTION_LINES:
                    long[f"{name}:{node.name}"] = lines
    assert long == {}
