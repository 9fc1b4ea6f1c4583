"""schemathesis against the running app's own OpenAPI document: seeded, bounded, time-boxed.

It must find no 5xx, no undocumented status code or content type, and no response that
violates its documented schema, on every operation (as an admin, so every route is reached).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scanner.store import alerts as alert_store
from scanner.store import sessions
from scanner.store.db import Store
from tests.api.api_helpers import LiveServer, make_alert

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
# The event stream never ends (it is tested in test_api_sse); revoking tokens would revoke the
# token the fuzzer itself signs in with.
EXCLUDE = [
    "--exclude-path",
    "/api/v1/events",
    "--exclude-operation-id",
    "revoke_token_api_v1_tokens__token_id__delete",
]


def _schemathesis() -> str:
    found = Path(sys.executable).parent / "schemathesis"
    if found.exists():
        return str(found)
    which = shutil.which("schemathesis")
    if which is None:
        pytest.skip("schemathesis is not installed")
    return which


@pytest.mark.timeout(300)
def test_schemathesis_finds_no_server_error_or_schema_violation(
    live: LiveServer, store: Store
) -> None:
    token = sessions.create_token(store, "admin", "fuzz", time.time(), "test")
    for i in range(3):
        alert_store.raise_alert(store, make_alert(f"a{i}", 1000.0 + i))
    result = subprocess.run(
        [
            _schemathesis(),
            "run",
            f"{live.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            *EXCLUDE,
            "--max-examples",
            "25",
            "--seed",
            "20261125",
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "1",
            "--request-timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert " passed" in output and "failures" not in output.lower().split("summary")[-1], output[
        -3000:
    ]
