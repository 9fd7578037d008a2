"""Building blocks of the request models every router shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, model_validator

from arserver.errors import InputError
from arserver.services.checks import storable_text


def unstorable_text(value: Any) -> str | None:
    """Where in a JSON value (``device.fields``, ``datastreams[0].unit``...) the first text is
    that a database cannot store (a NUL character, a lone surrogate), in a key or a value; None
    if there is none. Iterative, so any depth the JSON parser allowed is fine."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, str):
            if not storable_text(item):
                return where or "the value"
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str) and not storable_text(key):
                    return f"a field name in {where or 'the object'}"
                pending.append((f"{where}.{key}" if where else str(key), inner))
        elif isinstance(item, list | tuple):
            pending.extend((f"{where}[{n}]", inner) for n, inner in enumerate(item))
    return None


class CheckedModel(BaseModel):
    """A request body whose text (every key and string value, at any depth) must be storable:
    a NUL character or a lone surrogate (``"\\ud800"`` in JSON) anywhere is a 422 before any
    field is validated. The error names the place, never the text, so that the 422 itself can
    be encoded as UTF-8."""

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        where = unstorable_text(data)
        if where is None:
            return data
        if not isinstance(data, dict):
            return None  # not an object anyway: refused without echoing the text
        raise ValueError(
            f"{where[:100]}: text must be valid Unicode without NUL characters or lone surrogates"
        )


class ValidationProblem(BaseModel):
    """One problem of a request that does not match its schema: where (``loc``), what
    (``msg``, ``type``) and, when it is short, the offending ``input``."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None


class Problem(BaseModel):
    """Every error answer: ``detail`` is one sentence, or for a request that does not match
    its schema, the list of its problems (at most 20, then a "more" entry)."""

    detail: str | list[ValidationProblem]


def _problem(description: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"model": Problem, "description": description}
    if headers:
        answer["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return answer


#: The error answers any route may give, declared once for the OpenAPI schema (a route that
#: documents one itself keeps its own description).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("The body is not valid JSON (or not UTF-8)"),
    401: _problem(
        "No token, or one that is invalid, revoked or expired",
        **{"WWW-Authenticate": "Bearer"},
    ),
    403: _problem("The token's role or scope does not allow this"),
    404: _problem("No such thing, or none this caller may see"),
    409: _problem("Conflicts with what exists (an id taken)"),
    413: _problem("The body is larger than this route allows"),
    422: _problem("The request is not valid: the detail says why"),
    429: _problem(
        "Too many requests from this token or address",
        **{"Retry-After": "Seconds to wait before trying again"},
    ),
    503: _problem("A component the service needs is unavailable"),
}


def multipart_body(**properties: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI ``openapi_extra`` of a route that takes a multipart form with one binary
    part ``file`` (required) and the given other ``properties`` (their JSON schemas)."""
    schema = {
        "type": "object",
        "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}, **properties},
    }
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


def aware_time(text: str | None, what: str) -> datetime | None:
    """A query's ISO 8601 time with a time zone, in UTC (None: not given); :class:`InputError`
    naming ``what`` for a time without zone, one that does not parse, or one out of range."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InputError(f"{what} must be an ISO 8601 time with a time zone, got {text[:60]!r}")
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InputError(f"{what} is out of range") from None
