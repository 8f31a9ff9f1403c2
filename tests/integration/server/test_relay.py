"""The server's side of the relay (``dev8.server.relay``), no engine: opening streams, and
HTTP and WebSockets proxied through them by a small app under a real uvicorn, each through
dev8's real agent HTTP server (in this process) and through a stand-in agent
(``tests.standins.StandInAgent``), which also misbehaves on purpose. The app behind the agent is
a real Starlette app under uvicorn."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from dev8.agent.httpapi import AgentHTTPServer
from dev8.core.errors import WorkspaceUnreachable
from dev8.server.relay import Upstream, open_stream, proxy_http, proxy_websocket
from dev8.server.relay import http as relay_http
from tests.integration.server.live import LiveServer, wait_for
from tests.net import free_port
from tests.standins import (
    BANNER,
    LoopThread,
    StandInAgent,
    digest_after_eof,
    says_first,
)

TOKEN = "agent-token-for-tests"
BIG = 20 * 1024 * 1024
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class Behind:
    """What the app behind the agent saw and is told, shared with the tests."""

    def __init__(self) -> None:
        self.data = os.urandom(BIG)
        self.first_chunk_in = threading.Event()  # the upload's first bytes arrived
        self.go_on = threading.Event()  # the download may send the rest
        self.closed_with: list[int] = []  # close codes the WebSocket end received


def behind_app(behind: Behind) -> Starlette:
    """The app in the workspace: echoes, digests, big and dripping bodies, a WebSocket."""

    async def headers(request: Request) -> Response:
        answer = JSONResponse(
            {
                "headers": request.headers.items(),
                "url": str(request.url),
                "client_port": request.client.port if request.client else None,
            }
        )
        answer.headers.append("set-cookie", "one=1; Path=/")
        answer.headers.append("set-cookie", "two=2; Path=/")
        answer.headers["x-from-app"] = "yes"
        answer.headers["keep-alive"] = "timeout=99"
        return answer

    async def digest(request: Request) -> Response:
        sha, size = hashlib.sha256(), 0
        async for chunk in request.stream():
            if chunk and size == 0:
                behind.first_chunk_in.set()
            sha.update(chunk)
            size += len(chunk)
        return JSONResponse({"size": size, "sha256": sha.hexdigest()})

    async def download(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            view = memoryview(behind.data)
            for start in range(0, len(view), 256 * 1024):
                yield bytes(view[start : start + 256 * 1024])

        return StreamingResponse(chunks(), headers={"content-length": str(BIG)})

    async def drip(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first;"
            released = await anyio.to_thread.run_sync(behind.go_on.wait, 30)
            yield b"rest" if released else b"never released"

        return StreamingResponse(chunks())

    async def slow(request: Request) -> Response:
        released = await anyio.to_thread.run_sync(behind.go_on.wait, 30)
        return Response(b"late" if released else b"never released")

    async def socket(websocket: WebSocket) -> None:
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol="chosen" if "chosen" in offered else None)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    behind.closed_with.append(message.get("code", 0))
                    return
                if message.get("text") == "headers":
                    await websocket.send_text(json.dumps(dict(websocket.headers.items())))
                elif (message.get("text") or "").startswith("close:"):
                    await websocket.close(int(message["text"][6:]), "asked to")
                    return
                elif message.get("bytes") is not None:
                    await websocket.send_bytes(message["bytes"])
                else:
                    await websocket.send_text(message["text"])
        except WebSocketDisconnect as gone:
            behind.closed_with.append(gone.code)

    return Starlette(
        routes=[
            Route("/headers", headers, methods=METHODS),
            Route("/digest", digest, methods=["POST", "PUT"]),
            Route("/download", download),
            Route("/drip", drip),
            Route("/slow", slow),
            WebSocketRoute("/socket", socket),
        ]
    )


def front_app() -> Starlette:
    """The server's side: every path proxied to ``app.state.upstream`` (prefix ``/front``)."""

    async def http(request: Request) -> Response:
        path = "/" + request.path_params["path"]
        return await proxy_http(request, request.app.state.upstream, path, "/front")

    async def websocket(websocket: WebSocket) -> None:
        path = "/" + websocket.path_params["path"]
        await proxy_websocket(websocket, websocket.app.state.upstream, path)

    return Starlette(
        routes=[
            Route("/front/{path:path}", http, methods=METHODS),
            WebSocketRoute("/front/{path:path}", websocket),
        ]
    )


@pytest.fixture(scope="module")
def loops() -> Iterator[LoopThread]:
    with LoopThread() as loops:
        yield loops


@pytest.fixture(scope="module")
def agent(loops: LoopThread) -> StandInAgent:
    return StandInAgent(loops, {TOKEN})


@pytest.fixture(scope="module")
def real_agent() -> Iterator[str]:
    """dev8's agent HTTP server, on a free port; its address."""
    server = AgentHTTPServer(0, TOKEN, health=lambda: None, status=dict)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module", params=["stand-in", "agent"])
def agent_url(request: pytest.FixtureRequest, agent: StandInAgent) -> str:
    return agent.url if request.param == "stand-in" else request.getfixturevalue("real_agent")


@pytest.fixture(autouse=True)
def polite_agent(agent: StandInAgent) -> Iterator[None]:
    yield
    agent.mode, agent.coalesce = "relay", False


@pytest.fixture(scope="module")
def behind() -> Behind:
    return Behind()


@pytest.fixture(scope="module")
def app_port(behind: Behind) -> Iterator[int]:
    with LiveServer(behind_app(behind)) as live:
        yield int(live.url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def front(agent_url: str, app_port: int) -> Iterator[LiveServer]:
    app = front_app()
    app.state.upstream = Upstream(agent_url, TOKEN, app_port)
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def client(front: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=front.url, timeout=30) as client:
        yield client


# Opening streams ----------------------------------------------------------------------------


def test_what_the_port_says_first_is_kept(
    loops: LoopThread, agent: StandInAgent, agent_url: str
) -> None:
    """sshd speaks first; the agent may send its banner in the same packet as the 101 (the
    stand-in always does)."""
    agent.coalesce = True
    port = loops.serve(says_first(BANNER))

    async def banner_then_echo() -> tuple[bytes, bytes]:
        reader, writer = await open_stream(Upstream(agent_url, TOKEN, port))
        banner = await reader.readexactly(len(BANNER))
        writer.write(b"ping\n")
        echoed = await reader.readline()
        writer.close()
        return banner, echoed

    assert loops.run(banner_then_echo()) == (BANNER, b"ping\n")


def test_a_half_close_goes_through_and_the_answer_comes_back(
    loops: LoopThread, agent_url: str
) -> None:
    port = loops.serve(digest_after_eof)
    sent = os.urandom(3 * 1024 * 1024)

    async def send_then_read() -> bytes:
        reader, writer = await open_stream(Upstream(agent_url, TOKEN, port))
        writer.write(sent)
        writer.write_eof()
        answer = await reader.read()  # to the workspace side's EOF
        writer.close()
        return answer

    assert loops.run(send_then_read()).decode() == f"{len(sent)} {hashlib.sha256(sent).hexdigest()}"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("wrong token", "refused the server's token"),
        ("nothing listens", "nothing listens on port"),
        ("no agent", "cannot reach the workspace's agent"),
    ],
)
def test_refusals_are_one_line_unreachable_errors(
    loops: LoopThread, agent_url: str, app_port: int, case: str, message: str
) -> None:
    upstream = {
        "wrong token": Upstream(agent_url, "not-the-token", app_port),
        "nothing listens": Upstream(agent_url, TOKEN, free_port()),
        "no agent": Upstream(f"http://127.0.0.1:{free_port()}", TOKEN, app_port),
    }[case]
    with pytest.raises(WorkspaceUnreachable, match=message):
        loops.run(open_stream(upstream))


def test_an_agent_whose_headers_never_end_is_cut_off(
    loops: LoopThread, agent: StandInAgent, app_port: int
) -> None:
    agent.mode = "endless"
    started = time.monotonic()
    with pytest.raises(WorkspaceUnreachable, match="more than 8 KiB of headers"):
        loops.run(open_stream(Upstream(agent.url, TOKEN, app_port), timeout=30))
    assert time.monotonic() - started < 10  # cut off at the limit, not by the timeout


def test_an_agent_that_never_answers_times_out(
    loops: LoopThread, agent: StandInAgent, app_port: int
) -> None:
    agent.mode = "silent"
    with pytest.raises(WorkspaceUnreachable, match=r"did not answer within 0\.3 s"):
        loops.run(open_stream(Upstream(agent.url, TOKEN, app_port), timeout=0.3))


# HTTP ---------------------------------------------------------------------------------------


def test_big_bodies_stream_both_ways_intact(client: httpx.Client, behind: Behind) -> None:
    down = hashlib.sha256()
    with client.stream("GET", "/front/download") as answer:
        assert answer.status_code == 200
        assert answer.headers["content-length"] == str(BIG)
        for chunk in answer.iter_raw():
            down.update(chunk)
    assert down.hexdigest() == hashlib.sha256(behind.data).hexdigest()

    def chunks() -> Iterator[bytes]:
        for start in range(0, BIG, 1024 * 1024):
            yield behind.data[start : start + 1024 * 1024]

    up = client.post("/front/digest", content=chunks())  # chunked: no length known
    assert up.json() == {"size": BIG, "sha256": hashlib.sha256(behind.data).hexdigest()}
    with_length = client.put("/front/digest", content=behind.data[:1000])
    assert with_length.json()["size"] == 1000
    echoed = client.put("/front/headers", content=b"12345").json()["headers"]
    assert [value for name, value in echoed if name == "content-length"] == ["5"]


def test_bodies_are_not_held_whole(client: httpx.Client, behind: Behind) -> None:
    """The answer's first bytes arrive while the app is still holding back the rest, and
    the request's first bytes arrive while the client is holding back the rest."""
    behind.go_on.clear()
    with client.stream("GET", "/front/drip") as answer:
        stream = answer.iter_raw()
        assert next(stream) == b"first;"
        behind.go_on.set()
        assert b"".join(stream) == b"rest"

    behind.first_chunk_in.clear()

    def held_back() -> Iterator[bytes]:
        yield b"x" * 1000
        assert behind.first_chunk_in.wait(20), "the first chunk was held by the proxy"
        yield b"y" * 1000

    assert client.post("/front/digest", content=held_back()).json()["size"] == 2000


def test_headers_are_cleaned_and_forwarded(client: httpx.Client, front: LiveServer) -> None:
    answer = client.get(
        "/front/headers?q=1&r=two",
        headers={
            "Authorization": "Bearer the-users-api-token",
            "Cookie": "dev8_session=secret; app=1; dev8_app=other; theme=dark",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Prefix": "/evil",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "only this hop",
            "X-Custom": "kept",
        },
    )
    assert answer.status_code == 200
    seen = {}
    for name, value in answer.json()["headers"]:
        seen.setdefault(name, []).append(value)
    host = front.url.removeprefix("http://")
    assert answer.json()["url"] == f"http://{host}/headers?q=1&r=two"
    assert "authorization" not in seen and "x-hop" not in seen
    assert seen["cookie"] == ["app=1; theme=dark"]
    assert seen["host"] == [host] and seen["x-forwarded-host"] == [host]
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-prefix"] == ["/front"]
    assert seen["x-custom"] == ["kept"]
    assert answer.headers.get_list("set-cookie") == ["one=1; Path=/", "two=2; Path=/"]
    assert answer.headers["x-from-app"] == "yes"
    assert "timeout=99" not in answer.headers.get("keep-alive", "")


def test_no_cookie_header_when_only_dev8_cookies(client: httpx.Client) -> None:
    answer = client.get("/front/headers", headers={"Cookie": "dev8_session=secret"})
    assert "cookie" not in {name for name, _ in answer.json()["headers"]}


@pytest.mark.parametrize("down", ["port", "agent"])
def test_an_upstream_that_is_down_is_a_502(
    front: LiveServer, app_port: int, client: httpx.Client, down: str
) -> None:
    working = front.app.state.upstream
    front.app.state.upstream = (
        Upstream(working.agent_url, TOKEN, free_port())
        if down == "port"
        else Upstream(f"http://127.0.0.1:{free_port()}", TOKEN, app_port)
    )
    try:
        answer = client.get("/front/headers")
    finally:
        front.app.state.upstream = working
    assert answer.status_code == 502
    assert answer.json()["error"] == "unreachable"
    assert "\n" not in answer.json()["message"]


def test_an_answer_that_does_not_start_in_time_is_a_504(
    client: httpx.Client, behind: Behind, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_http, "FIRST_BYTE_TIMEOUT_S", 0.3)
    behind.go_on.clear()
    try:
        answer = client.get("/front/slow")
    finally:
        behind.go_on.set()
    assert answer.status_code == 504
    assert answer.json()["message"].endswith("did not answer within 0.3 s")


# WebSockets ---------------------------------------------------------------------------------


def ws_url(front: LiveServer, path: str) -> str:
    return front.url.replace("http://", "ws://") + path


def test_websocket_relays_both_kinds_and_picks_the_upstreams_subprotocol(
    front: LiveServer,
) -> None:
    with ws_connect(
        ws_url(front, "/front/socket?x=1"),
        subprotocols=["other", "chosen"],  # type: ignore[list-item]
        origin="http://ide.example",  # type: ignore[arg-type]
        additional_headers={"Cookie": "dev8_session=s; app=1", "Authorization": "Bearer t"},
        max_size=None,
    ) as socket:
        assert socket.subprotocol == "chosen"
        socket.send("hello")
        assert socket.recv(10) == "hello"
        payload = os.urandom(3 * 1024 * 1024)
        socket.send(payload)
        assert socket.recv(10) == payload
        socket.send("headers")
        headers = json.loads(socket.recv(10))
    host = front.url.removeprefix("http://")
    assert headers["host"] == host
    assert headers["origin"] == "http://ide.example"
    assert headers["cookie"] == "app=1"
    assert "authorization" not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1"


def test_websocket_close_codes_go_both_ways(front: LiveServer, behind: Behind) -> None:
    with ws_connect(ws_url(front, "/front/socket")) as socket:
        socket.send("close:4321")
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4321, "asked to")

    before = len(behind.closed_with)
    with ws_connect(ws_url(front, "/front/socket")) as socket:
        socket.send("hi")
        socket.recv(10)
        socket.close(4000, "browser leaves")
    wait_for(lambda: len(behind.closed_with) > before, 10, "the upstream's close")
    assert behind.closed_with[-1] == 4000


def test_websocket_refusals(front: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(ws_url(front, "/front/no-such-socket"))
    assert refused.value.response.status_code == 403  # the app's own answer, passed on

    working = front.app.state.upstream
    front.app.state.upstream = Upstream(working.agent_url, TOKEN, free_port())
    try:
        with pytest.raises(InvalidStatus) as unreachable:
            ws_connect(ws_url(front, "/front/socket"))
    finally:
        front.app.state.upstream = working
    assert unreachable.value.response.status_code == 502
    assert json.loads(unreachable.value.response.body)["error"] == "unreachable"


def test_proxied_requests_reuse_relayed_connections(client: httpx.Client) -> None:
    """Requests one after the other go over one kept-alive relayed connection (the app
    sees them all come from the same agent-side port)."""
    ports = [client.get("/front/headers").json()["client_port"] for _ in range(5)]
    assert len(set(ports)) == 1, ports
