"""Issue 16, item 4: what a workspace or a helper prints drove unbounded work in the server.

- The helper's stderr splitter joined each new chunk onto the unfinished line, so one long
  line cost time quadratic in its length (a 32 MiB line: 17 s of CPU) and memory equal to
  it. Now each byte is looked at once and a line keeps its first ``LINE_KEPT`` bytes.
- Helper jobs had neither a deadline nor a cap on their stdout: now the container is killed
  at either, with one ``ProviderError`` line.
- ``docker exec`` (the package recorder runs one in the member's container during every
  rebuild) had no deadline and kept all output. Now it stops waiting after its deadline and
  stops reading past its cap, with one ``ProviderError`` line.

The splitter's bound is checked structurally (what it holds after each chunk), not by time;
benchmarks/helper_output.py prints the costs as ratios.
"""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from dev8.core.errors import ProviderError
from dev8.core.images import helper_image
from dev8.core.naming import LABEL_OWNER
from dev8.providers.base import ExecResult, HelperJob
from dev8.providers.docker.execs import run_exec
from dev8.providers.docker.helpers import LINE_KEPT, STDERR_KEPT, STDOUT_MAX, _LineSplitter
from dev8.providers.docker.provider import DockerProvider
from tests.integration.conftest import OWNER, client  # noqa: F401 (the engine fixture)

LONG_LINE = 32 * 1024 * 1024
CHUNK = 4096  # the size of the engine's attach frames for a busy writer


def test_a_32_mib_line_is_cut_as_it_arrives():
    lines: list[str] = []
    splitter = _LineSplitter(lines.append)
    chunk = b"x" * CHUNK
    for _ in range(LONG_LINE // CHUNK):
        splitter.feed(chunk)
        assert len(splitter._partial) <= LINE_KEPT  # was: the whole line so far, re-joined
        assert len(splitter.kept) <= STDERR_KEPT
    splitter.feed(b"\ndev8-scan entries=3 files=2 bytes=99\npartial")
    splitter.flush()
    assert [len(line) for line in lines] == [LINE_KEPT, 36, 7]
    assert lines[1] == "dev8-scan entries=3 files=2 bytes=99"


def test_lines_split_across_chunks_are_whole():
    lines: list[str] = []
    splitter = _LineSplitter(lines.append)
    for piece in (b"dev8-res", b"ult sha256=ab", b" entries=4\nnext", b"\n"):
        splitter.feed(piece)
    assert lines == ["dev8-result sha256=ab entries=4", "next"]


@pytest.fixture
def running(client: docker.DockerClient) -> Iterator[str]:  # noqa: F811
    """A container standing in for a member's workspace (same base image, a shell)."""
    container = client.containers.run(
        helper_image(),
        ["sleep", "infinity"],
        detach=True,
        labels={LABEL_OWNER: OWNER},
        network_mode="none",
    )
    try:
        yield container.id
    finally:
        container.remove(force=True)


def _exec(client: docker.DockerClient, container: str, script: str, **bounds) -> ExecResult:  # noqa: F811
    return run_exec(
        client.api,
        container,
        ["sh", "-c", script],
        user="root",
        workdir=None,
        environment={},
        **bounds,
    )


def test_exec_output_is_capped(client, running):  # noqa: F811
    with pytest.raises(ProviderError, match="printed more than 1048576 bytes"):
        _exec(client, running, "head -c 268435456 /dev/zero", max_output=1 << 20)


def test_exec_has_a_deadline(client, running):  # noqa: F811
    with pytest.raises(ProviderError, match="did not finish in time"):
        _exec(client, running, "sleep 600", timeout=1.0)


def test_a_normal_exec_still_answers(client, running):  # noqa: F811
    result = _exec(client, running, "echo out; echo err >&2; exit 3")
    assert result.exit_code == 3
    assert sorted(result.output.split()) == [b"err", b"out"]


def _helper(purpose: str, script: str, deadline_s: float = 3600.0) -> HelperJob:
    return HelperJob(
        workspace_id="0123456789ab",
        owner=OWNER,
        purpose=purpose,
        image=helper_image(),
        argv=["sh", "-c", script],
        deadline_s=deadline_s,
    )


def test_a_helper_job_is_stopped_at_its_deadline(client):  # noqa: F811
    """A helper job had no deadline: one that never ended held its caller forever."""
    provider = DockerProvider(client)
    with pytest.raises(ProviderError, match=r"did not finish within 2 s"):
        provider.run_helper(_helper("deadline", "sleep 600", deadline_s=2.0))
    assert not client.containers.list(all=True, filters={"name": "dev8-0123456789ab-deadline"})


def test_a_helper_jobs_stdout_is_capped(client):  # noqa: F811
    """A helper job's stdout was kept whole in the server's memory."""
    provider = DockerProvider(client)
    over = STDOUT_MAX // 2**20 + 8
    with pytest.raises(ProviderError, match=r"printed more than 64 MiB"):
        provider.run_helper(_helper("flood", f"head -c {over}M /dev/zero; sleep 600"))
    ordinary = provider.run_helper(_helper("ordinary", "echo '{\"ok\": 1}'"))
    assert (ordinary.exit_code, ordinary.stdout) == (0, b'{"ok": 1}\n')
