"""CSV that spreadsheets open safely: cells that cannot run as formulas, text that encodes.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula (and some
treat a leading tab or carriage return the same way), so a description such as
``=HYPERLINK("http://evil", "click")`` in an export would become a live link or worse.
:func:`safe_cell` puts a ``'`` before such text, which spreadsheets read as "this is text" and
do not show. Numbers stay numbers (a negative number is no formula). Lone surrogates, which no
UTF-8 file can hold, become U+FFFD. Every CSV export of the service writes its cells through
:func:`safe_cell`; :func:`csv_text` writes a whole table (RFC 4180, CRLF line ends).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

#: Text cells that spreadsheets read as formulas start with one of these.
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
#: Excel reads a CSV file as UTF-8 only when it starts with this byte order mark.
BOM: Final = "\ufeff"

_SURROGATES: Final = re.compile("[\ud800-\udfff]")


def well_formed(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (``text`` itself when it has
    none), so that it always encodes as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)
    return text


def safe_cell(value: object) -> str:
    """The text of one CSV cell: None is empty; text starting with one of
    :data:`FORMULA_STARTS` gets a leading ``'`` (other text stays as it is, lone surrogates
    aside); a datetime is its ISO 8601 form; numbers and anything else their ``str``."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = well_formed(value)
        return "'" + text if text.startswith(FORMULA_STARTS) else text
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def csv_text(rows: Iterable[Sequence[object]], columns: Sequence[str], *, bom: bool = False) -> str:
    """A CSV table: a header line of ``columns``, then one line per row (each cell through
    :func:`safe_cell`), lines ending in CRLF, quoted where RFC 4180 needs it. ``bom``: start
    with :data:`BOM` (for files that Excel opens)."""
    buffer = io.StringIO()
    if bom:
        buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(column) for column in columns])
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"a row of {len(row)} cells under {len(columns)} columns")
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()
