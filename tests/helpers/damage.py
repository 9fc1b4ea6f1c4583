"""Damaging a real database file the way a failing SD card does: bytes flipped in the pages of
one table, found through SQLite's own page map (the ``dbstat`` table)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def table_pages(db: Path, table: str, kind: str = "leaf") -> list[int]:
    """Page numbers (1-based) holding ``table``'s b-tree pages of ``kind`` (leaf/internal)."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY pageno",
            (table, kind),
        ).fetchall()
        return [int(r[0]) for r in rows]
    finally:
        conn.close()


def flip_page(db: Path, pageno: int, page_size: int = 4096) -> None:
    """Invert the b-tree page header and cell pointers of page ``pageno``: its cells can no
    longer be found, and SQLite reports the page as malformed when it reads it."""
    offset = (pageno - 1) * page_size
    with db.open("r+b") as handle:
        handle.seek(offset)
        head = handle.read(64)
        handle.seek(offset)
        handle.write(bytes(b ^ 0xFF for b in head))


def damage_table(db: Path, table: str, pages: int = 1) -> list[int]:
    """Flip ``pages`` leaf pages in the middle of ``table``; returns the pages damaged."""
    leaves = table_pages(db, table)
    if not leaves:
        raise ValueError(f"{table} has no leaf pages in {db}")
    conn = sqlite3.connect(db)
    try:
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()
    mid = len(leaves) // 2
    chosen = leaves[mid : mid + pages]
    for pageno in chosen:
        flip_page(db, pageno, page_size)
    return chosen
