"""Bounded JSON reading: every JSON the project reads from outside goes through here.

Python's JSON decoder recurses once per nested array or object, so a file nested a few
thousand levels deep ends in ``RecursionError`` (a crash, not a parse error), and a file of
any size is read whole into memory. Here both are refused up front with a one-line
``JsonLimitError``, a ``ValueError`` like ``json.JSONDecodeError``, so callers that already
turn bad JSON into a clear error or a counted drop handle these the same way.

Bounds:

* ``MAX_DEPTH`` (64) levels of nesting. The deepest thing any of our formats holds is about
  five (a SigMF meta's ``global`` -> ``core:extensions`` -> one extension object; a BLE JSONL
  record's service-data map), so 64 leaves room for other tools' extensions and stays far
  below the interpreter's recursion limit (1000), whatever the caller's own stack depth.
* ``max_bytes`` per call: ``MAX_BYTES`` (16 MiB) unless the caller knows better (a SigMF meta
  of a long recording with an annotation per burst: ``SIGMF_META_MAX_BYTES``; one BLE JSONL
  line: ``LINE_MAX_BYTES``).

The depth check costs nothing on ordinary input: text with no more brackets in total than the
bound cannot be nested deeper than it, so only bracket-heavy input is scanned (one regular
expression pass that skips string contents, no recursion).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

MAX_DEPTH = 64
MAX_BYTES = 16 << 20
# A SigMF meta of an hour-long recording annotated burst by burst reaches tens of MB.
SIGMF_META_MAX_BYTES = 64 << 20
# One record of a JSON Lines file (a BLE advert is a few hundred bytes).
LINE_MAX_BYTES = 64 << 10

# A JSON string (with escapes) or one bracket: strings are skipped so "[[[" inside one is text.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class JsonLimitError(ValueError):
    """JSON refused before parsing: too deep or too large (the message is one line)."""


def check_depth(data: bytes | str, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``JsonLimitError`` when ``data`` nests arrays/objects deeper than ``max_depth``."""
    if isinstance(data, str):
        if data.count("[") + data.count("{") <= max_depth:
            return
        raw = data.encode("utf-8", "surrogatepass")
    else:
        raw = data
        if raw.count(b"[") + raw.count(b"{") <= max_depth:
            return
    depth = 0
    for m in _TOKENS.finditer(raw):
        c = m.group()
        if c in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise JsonLimitError(
                    f"JSON nested deeper than {max_depth} levels (at byte {m.start()})"
                )
        elif c in (b"]", b"}"):
            depth -= 1


def loads(data: bytes | str, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` within the bounds (``JsonLimitError``; ``json.JSONDecodeError`` as usual)."""
    size = len(data)
    if isinstance(data, str) and 4 * size > max_bytes:  # UTF-8: at most 4 bytes a character
        size = len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise JsonLimitError(f"JSON of {size} bytes is larger than the {max_bytes}-byte limit")
    check_depth(data, max_depth)
    return json.loads(data)


def load_path(path: str | Path, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON in a file, refused unread when the file is larger than ``max_bytes``.

    ``OSError`` when it cannot be read, ``JsonLimitError`` or ``json.JSONDecodeError`` (both
    ``ValueError``) when it is not acceptable JSON, ``UnicodeDecodeError`` (also a
    ``ValueError``) when it is not UTF-8.
    """
    p = Path(path)
    with p.open("rb") as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise JsonLimitError(f"{p.name} is larger than the {max_bytes}-byte limit for JSON")
    return loads(raw.decode("utf-8"), max_bytes, max_depth)
