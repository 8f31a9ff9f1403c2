"""`python -m dev8` is the `dev8` command."""

from dev8.cli.main import run

run()
