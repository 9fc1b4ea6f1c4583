"""The optional filters of a listing query as one SQL ``WHERE`` clause and its parameters."""

from __future__ import annotations

from typing import Any


def where_clause(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """``("ts >= ?", since), ...`` -> ``("WHERE ts >= ? AND ...", [since, ...])``.

    A condition whose value is None is a filter the caller did not ask for and is left out; with
    none left the clause is empty. The SQL fragments are the caller's own literals, never input:
    only the values travel as parameters.
    """
    clauses: list[str] = []
    params: list[Any] = []
    for sql, value in conditions:
        if value is not None:
            clauses.append(sql)
            params.append(value)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params
