"""Files that commands write: whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import click

from arserver.errors import ArserverError


def format_of(out: Path, by_extension: Mapping[str, str]) -> str:
    """The format ``out``'s extension names (case does not matter); a usage error naming the
    extensions that do otherwise."""
    fmt = by_extension.get(out.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(set(by_extension)))
        raise click.BadParameter(
            f"cannot tell the format from the extension: use {known}, or give --format",
            param_hint="'--out'",
        )
    return fmt


def write_atomically(target: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` through a temporary file in its folder, synced and
    then renamed over it (readable by its owner only: reports hold what residents wrote);
    the temporary file is removed if anything fails."""
    folder = target.parent
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
    except OSError as exc:
        raise ArserverError(f"cannot write to {folder}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ArserverError(f"cannot write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
