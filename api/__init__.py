"""The HTTP API and the guard's tablet page."""
