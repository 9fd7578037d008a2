"""Building blocks of the request models every router shares."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator

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
