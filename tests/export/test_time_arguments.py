"""The times a person types for export and report, the periods refused, and verify on a file
that is not there: each a one-line error, never a traceback."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from scanner.cli.main import main
from scanner.export.timefmt import TimeFormatError, parse_period, parse_time

# 2026-12-04T17:30:15Z
NOW = datetime(2026, 12, 4, 17, 30, 15, tzinfo=UTC).timestamp()
MIDNIGHT = datetime(2026, 12, 4, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("today", MIDNIGHT),
        ("yesterday", MIDNIGHT - 86400),
        ("-8h", NOW - 8 * 3600),
        ("-30m", NOW - 1800),
        ("-2d", NOW - 2 * 86400),
        ("-90s", NOW - 90),
        ("-1w", NOW - 7 * 86400),
        ("-1.5h", NOW - 5400),
        (" -2D ", NOW - 2 * 86400),
        ("2026-12-04T08:00:00Z", MIDNIGHT + 8 * 3600),
        ("2026-12-04T08:00:00", MIDNIGHT + 8 * 3600),
        ("2026-12-04T09:00:00+01:00", MIDNIGHT + 8 * 3600),
        ("2026-12-04", MIDNIGHT),
        ("1764835200", 1764835200.0),
    ],
)
def test_times_a_person_types(text: str, expected: float) -> None:
    assert parse_time(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["tomorrow", "8h", "+8h", "-8x", "-h", "last week", "", "-1e9d"])
def test_times_refused_with_the_forms_that_work(text: str) -> None:
    with pytest.raises(TimeFormatError, match="not a time"):
        parse_time(text, NOW)


def test_a_period_must_end_by_now_and_start_before_it_ends() -> None:
    assert parse_period("-8h", "now", NOW) == (NOW - 8 * 3600, NOW)
    assert parse_period("yesterday", "today", NOW) == (MIDNIGHT - 86400, MIDNIGHT)
    with pytest.raises(TimeFormatError, match="in the future"):
        parse_period("today", "2026-12-04T18:00:00Z", NOW)
    with pytest.raises(TimeFormatError, match="must be before its end"):
        parse_period("now", "-1h", NOW)
    with pytest.raises(TimeFormatError, match="must be before its end"):
        parse_period("today", "today", NOW)


@pytest.mark.parametrize("command", ["export", "report"])
@pytest.mark.parametrize(
    ("since", "until", "words"),
    [
        ("-1h", "2999-01-01T00:00:00Z", "is in the future"),
        ("now", "-2h", "must be before its end"),
        ("soon", "now", "not a time: 'soon'"),
    ],
)
def test_export_and_report_refuse_a_bad_period_in_one_line(
    command: str,
    since: str,
    until: str,
    words: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "checkpoint.db"
    args = [command, "--db", str(db), "--since", since, "--until", until]
    rc = main([*args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert words in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not db.exists()  # a refused period never creates a store


def test_export_with_relative_times_writes_the_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scanner.store.db import Store

    Store(tmp_path / "checkpoint.db").close()
    out = tmp_path / "b.tar.gz"
    db = str(tmp_path / "checkpoint.db")
    rc = main(["export", "--db", db, "--since", "-8h", "--until", "now", "--out", str(out)])
    assert rc == 0 and out.exists()
    assert "0 alerts" in capsys.readouterr().out


def test_verify_of_a_missing_or_unreadable_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for target in (tmp_path / "absent.tar.gz", tmp_path):
        rc = main(["verify", str(target)])
        captured = capsys.readouterr()
        assert rc == 2
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("checkpoint verify: cannot read")
        assert not captured.out
    # A --db that is not there is not created by asking for its key.
    (tmp_path / "b.tar.gz").write_bytes(b"")
    rc = main(["verify", str(tmp_path / "b.tar.gz"), "--db", str(tmp_path / "none.db")])
    assert rc == 2 and not (tmp_path / "none.db").exists()
    assert "cannot read the sealing key" in capsys.readouterr().err
