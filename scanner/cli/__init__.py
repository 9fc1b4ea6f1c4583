"""The `checkpoint` command line."""
