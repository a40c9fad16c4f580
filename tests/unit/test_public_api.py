"""The package's public surface: the Python API, RunConfig, ExitCode, the report's Status and the
exceptions, listed once in ``bulkrunner.__all__``; everything else is internal."""

import ast
from pathlib import Path

import bulkrunner
from bulkrunner import api, errors, model
from bulkrunner.config import run_config

PUBLIC = {
    "apply": api.apply,
    "plan": api.plan,
    "export": api.export,
    "RunConfig": run_config.RunConfig,
    "ExitCode": errors.ExitCode,
    "Status": model.Status,
    "BulkrunnerError": errors.BulkrunnerError,
    "UsageError": errors.UsageError,
    "InputFileError": errors.InputFileError,
    "RunInProgress": errors.RunInProgress,
    "Aborted": errors.Aborted,
}


def test_the_public_names_are_exactly_all() -> None:
    # dir(), not vars(): the names are imported on first use, and dir() lists them before that
    public = {name for name in dir(bulkrunner) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(bulkrunner, name)).__name__ == "module"}
    assert public - modules == set(bulkrunner.__all__)
    assert all(getattr(bulkrunner, name) is not None for name in bulkrunner.__all__)


def test_all_is_the_api_the_configuration_the_codes_and_the_exceptions() -> None:
    assert sorted(bulkrunner.__all__) == sorted(PUBLIC)
    for name, value in PUBLIC.items():
        assert getattr(bulkrunner, name) is value


def test_internals_are_not_reachable_from_the_package() -> None:
    for internal in ("Engine", "HttpSender", "SlidingWindowLimiter", "run_job", "load_input"):
        assert not hasattr(bulkrunner, internal), internal


def test_the_type_checker_sees_the_names_of_all() -> None:
    """The imports the type checker reads (under TYPE_CHECKING) name what ``__all__`` lists."""
    tree = ast.parse(Path(bulkrunner.__file__).read_text(encoding="utf-8"))
    (checking,) = [node for node in tree.body if isinstance(node, ast.If)]
    imported = {
        alias.name
        for node in ast.walk(checking)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == set(bulkrunner.__all__)
