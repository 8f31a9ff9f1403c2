"""Running the restore's swap program as its helper does, killed at a chosen point: before
its Nth journal write (``journal N``) or its Nth ``rename`` (``rename N``), every state
change and every entry moved. The program is read from ``DEV8_SWAP_PY`` as in a helper; the
arguments after the point are the program's own (``install TOKEN ROOT...``).

Killed means ``os._exit(137)``: the process ends at once, no handler or ``finally`` runs,
as with SIGKILL (which python3 cannot send itself as PID 1 of a helper container). Exit
code 0: the program ended before the point (there are fewer than N).
"""

from __future__ import annotations

from pathlib import Path

from dev8.agent import volume_swap

KILLED = 137
KILLER = r"""
import os, sys
KILLED = 137
kind, limit = sys.argv[1], int(sys.argv[2])
program = {"__name__": "volume_swap"}
exec(compile(os.environ["DEV8_SWAP_PY"], "volume_swap", "exec"), program)
count = 0
def counted(function):
    def call(*args):
        global count
        count += 1
        if count == limit:
            os._exit(KILLED)
        return function(*args)
    return call
if kind == "journal":
    program["_write_journal"] = counted(program["_write_journal"])
else:
    program["os"].rename = counted(program["os"].rename)
sys.exit(program["main"](sys.argv[3:]))
"""


def killer_argv(kind: str, limit: int, action: str, token: str, roots: list[str]) -> list[str]:
    return ["python3", "-c", KILLER, kind, str(limit), action, token, *roots]


def swap_program() -> str:
    return Path(volume_swap.__file__).read_text()
