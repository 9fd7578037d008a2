"""Exception hierarchy of the tiles library: one root, specific leaves that callers can catch."""

from __future__ import annotations


class TilesError(Exception):
    """Root of every error the tiles library raises on purpose."""


class CrsError(TilesError):
    """A coordinate reference system or transformation problem."""


class UnknownCrsError(CrsError):
    """A CRS definition that PROJ does not understand (e.g. ``EPSG:99999``)."""


class OperationUnavailableError(CrsError):
    """The best transformation cannot run here (a grid is missing, or only a ballpark exists).

    ``missing_grids`` names the grid files the best operation needs; it is empty when the only
    problem is that the best available operation is a ballpark one.
    """

    def __init__(self, message: str, *, missing_grids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing_grids = missing_grids


class GridNotFoundError(OperationUnavailableError):
    """A grid file that one of our own transformations needs is not installed."""


class InvalidCoordinatesError(CrsError):
    """Input coordinates that are not finite numbers (NaN or infinity), or of the wrong shape.

    ``index`` is the position of the first offending point in the input, or None.
    """

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class OutsideGridError(CrsError):
    """Points outside the area where a grid-based transformation is defined.

    ``indices`` holds the positions (in the input) of the first few offending points and
    ``count`` how many there are in all.
    """

    def __init__(self, message: str, *, indices: tuple[int, ...], count: int) -> None:
        super().__init__(message)
        self.indices = indices
        self.count = count


class UnsupportedFormatError(TilesError):
    """An input whose content is no supported format, or whose format cannot be told.

    ``name`` is the file's base name, ``reason`` the message without the leading name (for
    callers that name the file their own way) and ``detected`` what the content looks like ("a
    PNG image"), or None when it is unrecognisable. ``named`` says that ``reason`` already names
    the file, so the message does not start with the name again.
    """

    def __init__(
        self, name: str, reason: str, *, detected: str | None = None, named: bool = False
    ) -> None:
        super().__init__(reason if named else f"{name}: {reason}")
        self.name = name
        self.reason = reason
        self.detected = detected
