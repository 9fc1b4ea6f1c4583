"""MANIFEST.json: the sha256 of every file in a bundle, the chain heads, and its own digest.

The manifest is written in one canonical form (sorted keys, one-space indent, ASCII), so a
verifier can tell a changed byte anywhere in it: the text must re-serialise to itself, and the
``digest`` field must be the sha256 of the rest. ``seal`` is an HMAC of the same text with the
site key: anyone can check the digest, only the unit (which holds the key) can check the seal,
which shows the bundle was made by this unit and not re-hashed by someone who edited it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from scanner import safe_json

FORMAT = "checkpoint-export/1"
MANIFEST_NAME = "MANIFEST.json"
_UNSIGNED = ("digest", "seal")


class ManifestError(ValueError):
    """MANIFEST.json is missing, not canonical, or its digest does not match."""


def _text(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, indent=1, ensure_ascii=True).encode() + b"\n"


def _signed_part(manifest: dict[str, Any]) -> bytes:
    return _text({k: v for k, v in manifest.items() if k not in _UNSIGNED})


def seal_of(key: bytes, manifest: dict[str, Any]) -> str:
    return hmac.new(key, _signed_part(manifest), hashlib.sha256).hexdigest()


def manifest_bytes(fields: dict[str, Any], key: bytes | None) -> bytes:
    """The manifest's exact bytes: the fields, their digest and (with a key) their seal."""
    out = dict(fields)
    out["digest"] = hashlib.sha256(_signed_part(fields)).hexdigest()
    if key is not None:
        out["seal"] = seal_of(key, fields)
    return _text(out)


def parse_manifest(raw: bytes) -> dict[str, Any]:
    """The manifest's fields; raises ManifestError naming what is wrong with it."""
    try:
        manifest = safe_json.loads(raw)
    except ValueError as exc:
        raise ManifestError(f"MANIFEST.json is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise ManifestError("MANIFEST.json is not a JSON object")
    if manifest.get("format") != FORMAT:
        raise ManifestError(f"MANIFEST.json format is {manifest.get('format')!r}, not {FORMAT}")
    if _text(manifest) != raw:
        raise ManifestError("MANIFEST.json altered: its text is not in the form it was written")
    if manifest.get("digest") != hashlib.sha256(_signed_part(manifest)).hexdigest():
        raise ManifestError("MANIFEST.json altered: its digest does not match its content")
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in files.values()
    ):
        raise ManifestError("MANIFEST.json has no valid file list")
    return manifest


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
