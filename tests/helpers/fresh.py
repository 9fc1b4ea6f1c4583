"""A probe run in a fresh interpreter, for what a process imports: the test process has loaded
most of the project already, so only a new one shows what an import pulls in by itself."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def probe_json(code: str, timeout_s: float = 120.0) -> Any:
    """Run ``code`` in a new interpreter and read the JSON it prints (it must print only that)."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=timeout_s
    )
    return json.loads(out.stdout)
