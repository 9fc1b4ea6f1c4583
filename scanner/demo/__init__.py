"""The bundled demo scenario (package data): see README.md beside this file."""

from __future__ import annotations

from pathlib import Path

SCENARIO = Path(__file__).resolve().parent / "scenario"
