"""Every third-party package the code imports is declared in pyproject.toml: the package's in
``[project].dependencies``, the tests' and benchmarks' there or in the ``test`` extra, the docs
tools' there or in the ``docs`` extra."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

from tests import ROOT
from tests.sources import nodes, python_files

FIRST_PARTY = {"bulkrunner", "tests", "benchmarks", "tools"}
# Import names whose distribution is named otherwise, for when it is not installed to tell.
KNOWN = {"yaml": "pyyaml", "dateutil": "python-dateutil", "PIL": "pillow"}


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(requirements: Iterable[str]) -> set[str]:
    """The distribution names of requirement strings such as ``numpy>=1.26``."""
    names = set()
    for requirement in requirements:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        assert match is not None, requirement
        names.add(_normalized(match.group(1)))
    return names


def _imported(folder: str) -> dict[str, str]:
    """Each top-level third-party module imported under ``folder``, with one place it is."""
    found: dict[str, str] = {}
    for path in python_files(ROOT / folder):
        for node in nodes(path):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                    found.setdefault(top, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


@functools.cache
def _providers() -> Mapping[str, list[str]]:
    """Each importable top-level module, with the installed distributions providing it (a
    scan of every installed distribution: once a process)."""
    return importlib.metadata.packages_distributions()


def undeclared(imported: dict[str, str], declared: set[str]) -> list[str]:
    """``module (where): distribution`` for each module no declared distribution provides."""
    providers = _providers()
    missing = []
    for module, where in sorted(imported.items()):
        distributions = providers.get(module) or [KNOWN.get(module, module)]
        if not {_normalized(name) for name in distributions} & declared:
            missing.append(f"{module} ({where}): {' or '.join(distributions)}")
    return missing


def test_every_package_the_code_imports_is_a_dependency() -> None:
    declared = _declared(_pyproject()["project"]["dependencies"])
    assert undeclared(_imported("bulkrunner"), declared) == []


def test_every_package_the_tests_and_benchmarks_import_is_declared() -> None:
    project = _pyproject()["project"]
    declared = _declared(project["dependencies"] + project["optional-dependencies"]["test"])
    imported = {**_imported("benchmarks"), **_imported("tests")}
    assert undeclared(imported, declared) == []


def test_every_package_the_docs_tools_import_is_declared() -> None:
    project = _pyproject()["project"]
    declared = _declared(project["dependencies"] + project["optional-dependencies"]["docs"])
    assert undeclared(_imported("tools"), declared) == []


def test_the_check_finds_a_package_imported_but_not_declared() -> None:
    requirements = _pyproject()["project"]["dependencies"]
    without_numpy = [r for r in requirements if _normalized(r).split(">")[0] != "numpy"]
    assert len(without_numpy) == len(requirements) - 1
    missing = undeclared(_imported("bulkrunner"), _declared(without_numpy))
    assert [entry.split(" ")[0] for entry in missing] == ["numpy"]


def test_the_package_says_on_which_systems_it_runs() -> None:
    classifiers = _pyproject()["project"]["classifiers"]
    assert "Operating System :: POSIX" in classifiers
    assert "Operating System :: Microsoft :: Windows" in classifiers
