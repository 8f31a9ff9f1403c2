"""Running a command in a container group: ACI's exec, which starts one process without
arguments and joins it to a WebSocket as a terminal (the first message is the password Azure
gave with the socket's address). So the process is a shell, and the command is one line typed
into it that prints the command's output in base64 (which a terminal passes unchanged) and
its exit status between two markers, then ends the shell."""

from __future__ import annotations

import base64
import re
import shlex
import time
from collections.abc import Sequence

from dev8.core.errors import OperationTimeout, ProviderError
from dev8.providers.base import ExecResult
from dev8.providers.kubernetes.execute import as_user

SHELL = "/bin/bash"
MAX_TRANSCRIPT = 64 * 1024**2  # as a helper's stdout: beyond it the command is not ours
DEFAULT_TIMEOUT_S = 600.0
RESULT = re.compile(rb"DEV8-EXEC-BEGIN\r?\n([A-Za-z0-9+/=]*)\r?\nDEV8-EXEC-END (\d+)")


def command_line(argv: Sequence[str], user: str, workdir: str | None) -> str:
    """The line typed into the shell. The markers are printed from halves, so that the
    terminal's echo of the line itself never matches ``RESULT``; stdin is /dev/null."""
    command = shlex.join(as_user(argv, user, workdir))
    return (
        f"stty -echo; out=$({command} </dev/null 2>&1 | base64 -w0; exit ${{PIPESTATUS[0]}}); "
        "rc=$?; printf '%s%s\\n%s\\n%s%s %d\\n' DEV8-EXEC- BEGIN \"$out\" DEV8-EXEC- END "
        '"$rc"; exit\n'
    )


def parse(transcript: bytes) -> ExecResult | None:
    """The command's result once the transcript holds it, else None."""
    match = RESULT.search(transcript)
    if match is None:
        return None
    return ExecResult(int(match[2]), base64.b64decode(match[1]))


def run(uri: str, password: str, line: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> ExecResult:
    """Type ``line`` into the shell at ``uri`` and read until its result."""
    from websockets.exceptions import ConnectionClosed, WebSocketException
    from websockets.sync.client import connect

    deadline = time.monotonic() + timeout_s
    transcript = bytearray()
    try:
        with connect(uri, open_timeout=30, max_size=MAX_TRANSCRIPT) as socket:
            socket.send(password)
            socket.send(line)
            while (result := parse(bytes(transcript))) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OperationTimeout(f"the command did not end within {timeout_s:.0f} s")
                try:
                    message = socket.recv(timeout=left)
                except (TimeoutError, ConnectionClosed):
                    break
                transcript += message if isinstance(message, bytes) else message.encode()
                if len(transcript) > MAX_TRANSCRIPT:
                    raise ProviderError("the command wrote more than 64 MiB; run it over SSH")
    except (OSError, WebSocketException) as exc:
        raise ProviderError(f"ACI's exec session failed: {exc}") from exc
    result = result or parse(bytes(transcript))
    if result is None:
        raise ProviderError("ACI's exec session ended before the command's exit status")
    return result
