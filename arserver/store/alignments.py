"""Stored alignments: the SQL behind :mod:`arserver.services.alignment`.

An alignment is the transformation ``matrix`` (4x4 rows, on column vectors) from a headset's
tracking frame (metres, ``up`` ``y`` or ``z``) to East-North-Up metres at ``origin_lon``,
``origin_lat`` (degrees, ETRS89) and ``origin_h`` (ellipsoidal metres), made by ``owner`` (the
caller's stable id: a token id or ``oidc:<issuer tag>:<subject>``). The point pairs it was
fitted from are not stored. Times are timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import Connection, delete, func, insert, select

from arserver.store.schema import alignments


class AlignmentRow(TypedDict):
    id: str
    owner: str
    created_at: datetime
    origin_lon: float
    origin_lat: float
    origin_h: float
    matrix: list[list[float]]
    up: str
    rms_m: float


def store_alignment(connection: Connection, row: AlignmentRow, keep: int) -> None:
    """Store ``row``, then keep only the ``keep`` newest alignments of its owner."""
    connection.execute(insert(alignments).values(**row))
    a = alignments.c
    kept = (
        select(a.id)
        .where(a.owner == row["owner"])
        .order_by(a.created_at.desc(), a.id.desc())
        .limit(keep)
        .scalar_subquery()
    )
    connection.execute(delete(alignments).where(a.owner == row["owner"], a.id.not_in(kept)))


def alignment_of(
    connection: Connection, alignment_id: str, owner: str, since: datetime
) -> AlignmentRow | None:
    """The alignment ``alignment_id`` of ``owner`` made at or after ``since``, or None."""
    a = alignments.c
    row = (
        connection.execute(
            select(alignments).where(a.id == alignment_id, a.owner == owner, a.created_at >= since)
        )
        .mappings()
        .first()
    )
    return None if row is None else _row(row)


def alignments_of(
    connection: Connection, owners: Collection[str], limit: int
) -> list[AlignmentRow]:
    """The ``limit`` newest alignments of ``owners``, oldest of them first."""
    if not owners:
        return []
    a = alignments.c
    rows = connection.execute(
        select(alignments)
        .where(a.owner.in_(list(owners)))
        .order_by(a.created_at.desc(), a.id.desc())
        .limit(limit)
    ).mappings()
    return [_row(row) for row in reversed(list(rows))]


def alignment_count(connection: Connection, owners: Collection[str]) -> int:
    if not owners:
        return 0
    count = connection.execute(
        select(func.count()).select_from(alignments).where(alignments.c.owner.in_(list(owners)))
    ).scalar_one()
    return int(count)


def delete_alignments_of(connection: Connection, owners: Collection[str]) -> int:
    """Delete every alignment of ``owners``; how many there were."""
    if not owners:
        return 0
    deleted: int = connection.execute(
        delete(alignments).where(alignments.c.owner.in_(list(owners)))
    ).rowcount
    return deleted


def delete_alignments_before(connection: Connection, cutoff: datetime) -> int:
    """Delete the alignments made before ``cutoff`` (their lifetime is over)."""
    deleted: int = connection.execute(
        delete(alignments).where(alignments.c.created_at < cutoff)
    ).rowcount
    return deleted


def _row(row: Any) -> AlignmentRow:
    matrix: Sequence[Sequence[float]] = row["matrix"]
    return AlignmentRow(
        id=row["id"],
        owner=row["owner"],
        created_at=row["created_at"],
        origin_lon=float(row["origin_lon"]),
        origin_lat=float(row["origin_lat"]),
        origin_h=float(row["origin_h"]),
        matrix=[[float(v) for v in line] for line in matrix],
        up=row["up"],
        rms_m=float(row["rms_m"]),
    )
