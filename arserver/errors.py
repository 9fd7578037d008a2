"""Exception root of the service; the CLI and the HTTP layer map these to messages and codes.

Every error the service raises on purpose derives from :class:`ArserverError`, whichever package
raises it (``live``, ``ingest``, ``store``...), so that ``app.STATUS_BY_ERROR`` can give each a
status by its class. Messages are for the caller: they never name a server path, SQL or a stack.
"""

from __future__ import annotations


class ArserverError(Exception):
    """Root of every error the service raises on purpose."""


class InputError(ArserverError):
    """Input that cannot be used, with the place it was found (``line`` is 1-based, or None)."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


class QueryError(InputError):
    """A query that cannot be answered as asked: an unknown query option, property or
    function, or a filter too large or malformed (HTTP 400, naming the construct)."""


class TooLargeError(InputError):
    """An upload over the configured size limit."""


class NotFoundError(ArserverError):
    """The thing asked for does not exist (or the caller may not know that it does)."""


class AuthenticationError(ArserverError):
    """No valid token was presented."""


class PermissionDeniedError(ArserverError):
    """The token is valid but its role may not do this."""


class ConflictError(ArserverError):
    """The thing to create exists already (a sensor id, a device EUI)."""


class BusyError(ArserverError):
    """The server has no room for this request now (every turn of a bounded resource is
    taken); nothing was done and the same request may succeed later (HTTP 503)."""


class UnavailableError(ArserverError):
    """A component the request needs (the tile object storage) cannot be reached now; nothing
    was done and the same request may succeed later (HTTP 503)."""
