"""Regenerate ``data/assigned_numbers.json`` from the ``bluetooth-numbers`` package.

The scanner ships the Bluetooth SIG company identifiers and 16-bit service UUID names as a data
file so nothing is fetched at run time and the package is not a runtime dependency. Run this
after ``pip install bluetooth-numbers`` to refresh the file::

    python -m scanner.sources.ble.tables_build

``bluetooth-numbers`` (MIT) is generated from Nordic's bluetooth-numbers-database, which follows
the SIG's published assigned-numbers lists.
"""

from __future__ import annotations

import importlib
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).with_name("data") / "assigned_numbers.json"


def build() -> dict[str, Any]:
    """The table as a JSON-ready mapping (company ids and 16-bit service UUIDs as strings)."""
    numbers: Any = importlib.import_module("bluetooth_numbers")
    companies = {str(k): str(v) for k, v in sorted(numbers.company.items())}
    services = {
        f"{k:04x}": str(v)
        for k, v in sorted((k, v) for k, v in numbers.service.items() if isinstance(k, int))
    }
    return {
        "source": f"bluetooth-numbers {metadata.version('bluetooth-numbers')}",
        "companies": companies,
        "services16": services,
    }


def main() -> int:
    table = build()
    DATA_FILE.write_text(json.dumps(table, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    sys.stdout.write(
        f"wrote {DATA_FILE}: {len(table['companies'])} companies, "
        f"{len(table['services16'])} services\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
