"""Reading what is readable from a damaged store, and saying exactly what is not.

An export is needed most right after something went wrong, which is when an SD card is most
likely to have damaged pages. A query that touches one damaged page fails as a whole; here it
is tried again table by table over rowid ranges (the table's own b-tree, no index), halving each
range that fails down to single rows. Rows on intact pages are all returned; rows on damaged
pages are listed as ``Unreadable`` ranges, which the bundle carries in its manifest and report.

Cost: an intact store pays nothing (the normal query succeeds). A damaged table is read in
ranges of ``RANGE_ROWS``; each damaged page (about a hundred rows) costs a few dozen extra
single-row lookups.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from scanner.store.db import Store
from scanner.store.integrity import is_corrupt

_LOGGER = logging.getLogger(__name__)

# Rows per range of the salvage scan: large enough that an intact stretch of a million-row
# table is a thousand queries, small enough that a failed range is bisected in ten steps.
RANGE_ROWS = 1024
# The rowid rides along in salvaged rows only until they are sorted.
_ROWID = "_salvage_rowid"


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Rows (by rowid) or a whole read that the damaged store would not give back."""

    table: str
    what: str  # which part of the export needed them
    first_rowid: int | None
    last_rowid: int | None
    error: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "what": self.what,
            "first_rowid": self.first_rowid,
            "last_rowid": self.last_rowid,
            "error": self.error,
        }

    def words(self) -> str:
        if self.first_rowid is None:
            return f"{self.table}: unreadable ({self.what}): {self.error}"
        if self.first_rowid == self.last_rowid:
            rows = f"row {self.first_rowid}"
        else:
            rows = f"rows {self.first_rowid} to {self.last_rowid}"
        return f"{self.table}: {rows} unreadable ({self.what}): {self.error}"


class SalvageReader:
    """Reads rows for an export from a store that may be damaged, collecting what failed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.unreadable: list[Unreadable] = []

    def select(
        self,
        table: str,
        where: str = "1",
        params: Sequence[Any] = (),
        order: Sequence[str] = ("rowid",),
        what: str = "",
        columns: str = "*",
    ) -> list[dict[str, Any]]:
        """``SELECT columns FROM table WHERE where ORDER BY order`` as row dicts; on a damaged
        page, every row that can still be read, and the rest listed in ``unreadable``."""
        order_sql = ", ".join(order)
        sql = f"SELECT {columns} FROM {table} WHERE {where} ORDER BY {order_sql}"  # noqa: S608 - fixed names from the export's own code
        try:
            return [dict(r) for r in self.store.conn.execute(sql, tuple(params))]
        except sqlite3.DatabaseError as exc:
            if not is_corrupt(exc):
                raise
            _LOGGER.warning("export: %s is damaged (%s); reading it range by range", table, exc)
        rows = self._salvage(table, where, tuple(params), what or table, columns)
        rows.sort(key=_sort_key(order))
        for row in rows:
            del row[_ROWID]
        return rows

    def attempt(self, table: str, what: str, read: Callable[[], Any], default: Any) -> Any:
        """Run a read that has no row-by-row fallback (an aggregate); on damage, note the
        whole read as unreadable and return ``default``."""
        try:
            return read()
        except sqlite3.DatabaseError as exc:
            if not is_corrupt(exc):
                raise
            self.unreadable.append(Unreadable(table, what, None, None, str(exc)))
            return default

    def report(self) -> list[dict[str, Any]]:
        """What could not be read, once per table and rowid range (several parts of an
        export may have needed the same rows: their needs are joined)."""
        merged: dict[tuple[str, int | None, int | None], list[Unreadable]] = {}
        for u in self.unreadable:
            merged.setdefault((u.table, u.first_rowid, u.last_rowid), []).append(u)
        out: list[dict[str, Any]] = []
        for (table, first, last), items in merged.items():
            whats = list(dict.fromkeys(u.what for u in items))
            entry = Unreadable(table, "; ".join(whats), first, last, items[0].error)
            out.append({**entry.as_dict(), "words": entry.words()})
        return out

    # -- the salvage scan ---------------------------------------------------------------------
    def _salvage(
        self, table: str, where: str, params: tuple[Any, ...], what: str, columns: str
    ) -> list[dict[str, Any]]:
        bounds = self._bounds(table)
        if bounds is None:
            self.unreadable.append(
                Unreadable(
                    table, what, None, None, "the table's first and last rows are unreadable"
                )
            )
            return []
        lo, hi = bounds
        sql = (
            f"SELECT rowid AS {_ROWID}, {columns} FROM {table} NOT INDEXED "  # noqa: S608 - fixed names from the export's own code
            f"WHERE ({where}) AND rowid BETWEEN ? AND ?"
        )
        rows: list[dict[str, Any]] = []
        failed: list[tuple[int, int, str]] = []
        for start in range(lo, hi + 1, RANGE_ROWS):
            self._range(sql, params, start, min(start + RANGE_ROWS - 1, hi), rows, failed)
        for first, last, error in _merge(failed):
            self.unreadable.append(Unreadable(table, what, first, last, error))
        return rows

    def _range(
        self,
        sql: str,
        params: tuple[Any, ...],
        first: int,
        last: int,
        rows: list[dict[str, Any]],
        failed: list[tuple[int, int, str]],
    ) -> None:
        # Iterative halving: a failed range is split until the single rows that fail are known.
        pending = [(first, last)]
        while pending:
            a, b = pending.pop()
            try:
                got = [dict(r) for r in self.store.conn.execute(sql, (*params, a, b))]
            except sqlite3.DatabaseError as exc:
                if not is_corrupt(exc):
                    raise
                if a == b:
                    failed.append((a, b, str(exc)))
                else:
                    mid = (a + b) // 2
                    # Pushed high half first so the low half is read first (rows stay ordered).
                    pending += [(mid + 1, b), (a, mid)]
                continue
            rows.extend(got)

    def _bounds(self, table: str) -> tuple[int, int] | None:
        """The first and last rowid; from ``sqlite_sequence`` when the last page is damaged."""
        lo: int | None = None
        hi: int | None = None
        try:
            lo = self.store.conn.execute(f"SELECT MIN(rowid) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
        except sqlite3.DatabaseError:
            lo = 1
        try:
            hi = self.store.conn.execute(f"SELECT MAX(rowid) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
        except sqlite3.DatabaseError:
            try:
                row = self.store.conn.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
                ).fetchone()
                hi = int(row[0]) if row else None
            except sqlite3.DatabaseError:
                hi = None
        if lo is None and hi is None:
            return (1, 0)  # an empty table: nothing to read, nothing lost
        if hi is None:
            return None
        return (int(lo or 1), int(hi))


def _merge(failed: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Adjacent failed rowids with the same error as one range."""
    out: list[tuple[int, int, str]] = []
    for a, b, error in sorted(failed):
        if out and out[-1][1] + 1 >= a and out[-1][2] == error:
            out[-1] = (out[-1][0], max(out[-1][1], b), error)
        else:
            out.append((a, b, error))
    return out


def _sort_key(order: Sequence[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    names = [_ROWID if o.split()[0] == "rowid" else o.split()[0] for o in order]

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        # None sorts first, as in SQLite.
        return tuple((0, "") if row.get(n) is None else (1, row[n]) for n in names)

    return key
