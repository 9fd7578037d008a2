"""Exception root of the service; the CLI and the HTTP layer map these to messages and codes."""

from __future__ import annotations


class ArserverError(Exception):
    """Root of every error the service raises on purpose."""


class InputError(ArserverError):
    """Input that cannot be used, with the place it was found (``line`` is 1-based, or None)."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


class TooLargeError(InputError):
    """An upload over the configured size limit."""


class NotFoundError(ArserverError):
    """The thing asked for does not exist (or the caller may not know that it does)."""


class AuthenticationError(ArserverError):
    """No valid token was presented."""


class PermissionDeniedError(ArserverError):
    """The token is valid but its role may not do this."""
