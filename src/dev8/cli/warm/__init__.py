"""The warm process: a per-user process that has already imported what the everyday commands
import, and forks a child for each command that a `dev8` process hands it.

A new Python process spends about half a second importing SQLAlchemy, the docker SDK, Typer
and Rich before `dev8 start` does anything; the warm process pays that once. The `dev8`
process (``client``) passes it the command line, environment, working directory and its
own stdin, stdout and stderr; the forked child runs the command exactly as the `dev8`
process would have (same code, same terminal, same exit code), and the `dev8` process
forwards Ctrl-C to it. When none is running, the command runs in its own process as before
and one is started in the background for the next command. ``DEV8_WARM=off`` turns it off.

Only the same user reaches it: its socket is in a directory only that user can open, and
the server checks the peer's user id. It ends after ``IDLE_S`` without a command, and a new
one replaces it when dev8's code changes (the socket's name is a digest of the code).
"""

from __future__ import annotations

IDLE_S = 600.0
# Commands that only write to the terminal; the rest (ssh, exec, port forwarding, the
# server, prompts for passwords) keep their own process.
WARM_COMMANDS = frozenset(
    {"up", "create", "start", "stop", "restart", "rebuild", "ls", "status", "history", "url"}
)
