"""The `dev8` command."""
