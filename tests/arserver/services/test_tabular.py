"""CSV cells that no spreadsheet runs as formulas, text that always encodes, and tables that
read back as written (RFC 4180)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from arserver.services.tabular import BOM, csv_text, safe_cell, well_formed


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rx", "'\rx"),
        ("plain text", "plain text"),
        (" =not first", " =not first"),
        ("", ""),
        (None, ""),
        (-2.5, "-2.5"),
        (17, "17"),
        (True, "True"),
        (datetime(2026, 11, 3, 8, 0, tzinfo=UTC), "2026-11-03T08:00:00+00:00"),
    ],
)
def test_a_cell_is_text_that_cannot_run_as_a_formula(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


def test_lone_surrogates_become_replacement_characters() -> None:
    assert safe_cell("a \ud800 b") == "a \ufffd b"
    assert safe_cell("=\udfff") == "'=\ufffd"
    assert well_formed("fine é") == "fine é"


def test_a_table_reads_back_as_written_with_crlf_lines() -> None:
    rows: list[list[object]] = [["=1+1", 'quote " and, comma', None], ["line\nbreak", -3, 4.5]]
    text = csv_text(rows, ["a", "b", "c"])
    assert text.startswith("a,b,c\r\n")
    assert text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["a", "b", "c"],
        ["'=1+1", 'quote " and, comma', ""],
        ["line\nbreak", "-3", "4.5"],
    ]


def test_a_table_for_excel_starts_with_a_byte_order_mark() -> None:
    assert csv_text([], ["a"], bom=True) == BOM + "a\r\n"
    assert csv_text([], ["a"]) == "a\r\n"


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="2 cells under 3 columns"):
        csv_text([["x", "y"]], ["a", "b", "c"])
