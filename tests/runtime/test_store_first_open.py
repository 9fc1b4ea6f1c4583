"""First boot: the core and API daemons open (and migrate) a new database at the same moment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OPEN = (
    "import sys; from pathlib import Path; from scanner.runtime.build import check_store; "
    "check_store(Path(sys.argv[1]))"
)


def test_daemons_racing_to_create_the_store_all_start(tmp_path: Path) -> None:
    for round_ in range(5):
        db = tmp_path / f"r{round_}" / "checkpoint.db"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN, str(db)], stderr=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert all(p.returncode == 0 for p in procs), errors
        from scanner.store.db import Store

        store = Store(db)
        try:
            assert store.query("PRAGMA integrity_check")[0][0] == "ok"
        finally:
            store.close()
