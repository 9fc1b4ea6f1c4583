"""Helpers shared by test areas (import as ``helpers.<module>``; tests/ is on the path)."""
