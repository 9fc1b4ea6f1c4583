"""Opening and rewriting bundles the way someone tampering with one would."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from scanner.export.manifest import manifest_bytes


def unpack(path: Path) -> tuple[str, dict[str, bytes]]:
    files: dict[str, bytes] = {}
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            if m.isfile():
                handle = tar.extractfile(m)
                assert handle is not None
                files[m.name] = handle.read()
    top = next(iter(files)).split("/", 1)[0]
    return top, {n[len(top) + 1 :]: d for n, d in files.items()}


def repack(top: str, files: dict[str, bytes], path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def rehash(files: dict[str, bytes]) -> None:
    """Recompute the manifest's file hashes and digest, as a careful forger would (no key)."""
    manifest = json.loads(files["MANIFEST.json"])
    manifest.pop("digest")
    manifest.pop("seal", None)
    for name, entry in manifest["files"].items():
        entry["sha256"] = hashlib.sha256(files[name]).hexdigest()
        entry["bytes"] = len(files[name])
    files["MANIFEST.json"] = manifest_bytes(manifest, None)
