"""The record of processing in docs/privacy.md stays in step with the database schema."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from arserver.config import Settings
from arserver.store.schema import metadata

PRIVACY = Path(__file__).resolve().parents[3] / "docs" / "privacy.md"
SECTION = "## Record of processing"
HEADER = ["Column", "Personal", "What it is", "Purpose (legal ground)", "Retention", "Readers"]
PERSONAL = {"yes", "no", "pseudonymous"}


@dataclass(frozen=True)
class Row:
    line: int
    cells: list[str]

    @property
    def column(self) -> str:
        return self.cells[0].strip("`")


def _section(text: str) -> list[tuple[int, str]]:
    lines = text.splitlines()
    start = lines.index(SECTION)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [(i + 1, lines[i]) for i in range(start + 1, end)]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def record_table(text: str) -> tuple[list[str], list[Row]]:
    """The header and the rows of the first table in the section (the ``|---|`` line
    skipped)."""
    table = [(n, line) for n, line in _section(text) if line.lstrip().startswith("|")]
    assert table, f"{SECTION} in docs/privacy.md has no table"
    header = _cells(table[0][1])
    rows = [Row(n, _cells(line)) for n, line in table[1:] if not re.match(r"^\|[-| :]+\|$", line)]
    return header, rows


@pytest.fixture(scope="module")
def table() -> tuple[list[str], list[Row]]:
    return record_table(PRIVACY.read_text(encoding="utf-8"))


def schema_columns() -> set[str]:
    return {f"{t.name}.{c.name}" for t in metadata.tables.values() for c in t.columns}


def test_the_table_has_the_documented_fields(table: tuple[list[str], list[Row]]) -> None:
    header, _ = table
    assert header == HEADER


def test_every_schema_column_has_a_row(table: tuple[list[str], list[Row]]) -> None:
    documented = {row.column for row in table[1]}
    missing = sorted(schema_columns() - documented)
    assert not missing, f"columns without a row in docs/privacy.md {SECTION}: {missing}"


def test_every_row_names_a_column_that_exists(table: tuple[list[str], list[Row]]) -> None:
    stale = [f"line {r.line}: {r.column}" for r in table[1] if r.column not in schema_columns()]
    assert not stale, f"rows for columns the schema does not have: {stale}"


def test_each_column_has_one_row(table: tuple[list[str], list[Row]]) -> None:
    seen: dict[str, int] = {}
    twice = []
    for row in table[1]:
        if row.column in seen:
            twice.append(f"{row.column} (lines {seen[row.column]} and {row.line})")
        seen[row.column] = row.line
    assert not twice


def test_no_row_leaves_a_field_empty(table: tuple[list[str], list[Row]]) -> None:
    incomplete = [
        f"line {row.line}: {row.column}"
        for row in table[1]
        if len(row.cells) != len(HEADER) or not all(row.cells)
    ]
    assert not incomplete, f"rows with a missing or empty field: {incomplete}"


def test_rows_name_columns_in_backticks(table: tuple[list[str], list[Row]]) -> None:
    loose = [
        row.cells[0]
        for row in table[1]
        if not re.fullmatch(r"`[a-z_0-9]+\.[a-z_0-9]+`", row.cells[0])
    ]
    assert not loose


def test_personal_is_yes_no_or_pseudonymous(table: tuple[list[str], list[Row]]) -> None:
    unclear = [
        f"{row.column}: {row.cells[1]!r}" for row in table[1] if row.cells[1] not in PERSONAL
    ]
    assert not unclear


def test_retention_names_only_settings_that_exist(table: tuple[list[str], list[Row]]) -> None:
    """A name in backticks in the retention field is a table, a column or a Settings field, so
    a renamed setting cannot leave the record pointing at nothing."""
    known = set(Settings.model_fields) | set(metadata.tables) | schema_columns()
    unknown = [
        f"{row.column}: {name}"
        for row in table[1]
        for name in re.findall(r"`([^`]+)`", row.cells[4])
        if name not in known
    ]
    assert not unknown


def test_positions_of_mobile_sensors_name_their_retention_setting(
    table: tuple[list[str], list[Row]],
) -> None:
    rows = {row.column: row for row in table[1]}
    for column in ("observations.lon", "observations.lat", "observations.h"):
        assert rows[column].cells[1] == "yes"
        assert "`mobile_retention_days`" in rows[column].cells[4]


def test_the_check_catches_an_undocumented_column() -> None:
    """The parser finds the rows it should: dropping one row from the real text leaves that
    column undocumented."""
    text = PRIVACY.read_text(encoding="utf-8")
    dropped = "\n".join(
        line for line in text.splitlines() if not line.startswith("| `observations.lat` |")
    )
    _, rows = record_table(dropped)
    assert "observations.lat" in schema_columns() - {row.column for row in rows}
