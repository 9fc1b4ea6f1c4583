"""Processes of one unit starting at once (the core and the API) make one development sealing
key between them, and every one of them ends up linking the chain with that key."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from scanner.export.seal_key import SealKeys, new_key_file, write_keys


def test_simultaneous_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "seal.key"
    starters = 8
    barrier = threading.Barrier(starters)
    got: list[SealKeys] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def start() -> None:
        barrier.wait()
        try:
            keys = new_key_file(path)
        # Any failure of a starter is the finding, whatever its class.
        except BaseException as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            got.append(keys)

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(got) == starters
    assert {k.current for k in got} == {got[0].current}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # No writer's temporary file is left beside the key.
    assert sorted(os.listdir(tmp_path)) == ["seal.key"]


def test_an_exclusive_write_never_replaces_a_key_in_use(tmp_path: Path) -> None:
    path = tmp_path / "seal.key"
    assert write_keys(path, [bytes(32)], exclusive=True)
    assert not write_keys(path, [b"\x01" * 32], exclusive=True)
    assert bytes(32).hex() in path.read_text()
    # A rotation (not exclusive) does replace it.
    assert write_keys(path, [b"\x01" * 32, bytes(32)])
    assert path.read_text().splitlines()[1] == (b"\x01" * 32).hex()
