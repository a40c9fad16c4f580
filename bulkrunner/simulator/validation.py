"""How the simulated server checks a settings POST body, and the shapes every write answers.

A malformed or empty body is a 400 ``{"error": "..."}``, as is an enum value outside the accepted
vocabulary; an unknown field, a null, a wrong type or an out-of-range number is a 422
``VALIDATION_ERROR`` with details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bulkrunner.operations.fields import (
    ENUMS,
    FIELDS_BY_NAME,
    Field,
    Vocabulary,
    enum_names,
    translate,
)


@dataclass(frozen=True, slots=True)
class BodyRejection:
    """Why a body is refused: the status and JSON body to answer."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A write applied with an answer of its own, instead of ``{"success": true, "data": {}}``,
    and what the request record notes of it."""

    body: dict[str, Any]
    leads: int = 0  # leads an upload carried
    added: int = 0  # leads of them the account added


Applied = BodyRejection | Accepted | None  # refused, applied with its own answer, or applied


_EXPECTED = {
    "int": "an integer",
    "bool": "a boolean",
    "text": "a string",
    "enum": "a string",
    "enum_list": "an array of strings",
}


def bad_request(message: str) -> BodyRejection:
    """A flat 400, SmartLead's shape for a malformed body or a value outside a set of names."""
    return BodyRejection(400, {"error": message})


def invalid(message: str, **details: Any) -> BodyRejection:
    """A nested 422 ``VALIDATION_ERROR`` naming the field in its details."""
    error = {"code": "VALIDATION_ERROR", "message": message, "details": details}
    return BodyRejection(422, {"error": error})


def wrong_type(label: str, value: object, expected: str) -> BodyRejection:
    """A 422 for a field ``label`` whose value is not of the ``expected`` kind."""
    message = f"Field '{label}' must be {expected}"
    return invalid(message, field=label, expected=expected, received=json_type(value))


def json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    names = {int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), "null")


def _has_type(spec: Field, value: object) -> bool:
    if spec.kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if spec.kind == "bool":
        return isinstance(value, bool)
    if spec.kind == "enum_list":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return isinstance(value, str)


def validate_settings(
    body: object, vocabulary: Vocabulary | None
) -> dict[str, Any] | BodyRejection:
    """The changes ``body`` asks for, in the documented vocabulary, or why it is refused."""
    if not isinstance(body, dict):
        return bad_request("Invalid JSON body")
    if not body:
        return bad_request("No settings to update")
    changes: dict[str, Any] = {}
    for name, value in body.items():
        spec = FIELDS_BY_NAME.get(name)
        if spec is None:
            return invalid(f"Unknown field '{name}'", field=name, allowed=list(FIELDS_BY_NAME))
        checked = _check_value(spec, value, vocabulary)
        if isinstance(checked, BodyRejection):
            return checked
        changes[name] = checked
    return changes


def _check_value(spec: Field, value: object, vocabulary: Vocabulary | None) -> object:
    if value is None:
        return invalid(f"Field '{spec.name}' must not be null", field=spec.name)
    if not _has_type(spec, value):
        expected = _EXPECTED[spec.kind]
        message = f"Field '{spec.name}' must be {expected}"
        return invalid(message, field=spec.name, expected=expected, received=json_type(value))
    if spec.kind == "enum" and isinstance(value, str):
        return _check_enum(spec.name, value, vocabulary)
    if isinstance(value, list):
        names = [_check_enum(spec.name, item, vocabulary) for item in value]
        return next((n for n in names if isinstance(n, BodyRejection)), names)
    if spec.kind == "int" and isinstance(value, int):
        return check_range(spec, value)
    return value


def _check_enum(name: str, value: str, vocabulary: Vocabulary | None) -> str | BodyRejection:
    accepted = ENUMS[name] if vocabulary is None else enum_names(name, vocabulary)
    if value not in accepted:
        return bad_request(f"Invalid {name} value - {value}")
    return translate(name, value, Vocabulary.DOCUMENTED) or value


def check_range(spec: Field, value: int) -> int | BodyRejection:
    if spec.minimum is not None and value < spec.minimum:
        message = f"Field '{spec.name}' must be at least {spec.minimum}"
        return invalid(message, field=spec.name, minimum=spec.minimum, received=value)
    if spec.maximum is not None and value > spec.maximum:
        message = f"Field '{spec.name}' must be at most {spec.maximum}"
        return invalid(message, field=spec.name, maximum=spec.maximum, received=value)
    return value
