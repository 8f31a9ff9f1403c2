"""The attach-stream demultiplexer and pump, over a real socket pair."""

import socket
import struct
import threading

from dev8.providers.docker.streams import Demuxer, pump


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


def test_frames_split_across_reads_are_reassembled():
    out, err = bytearray(), bytearray()
    demuxer = Demuxer(out.extend, err.extend)
    data = frame(1, b"hello ") + frame(2, b"oops\n") + frame(1, b"world")
    for i in range(len(data)):  # one byte at a time: every boundary is crossed
        demuxer.feed(memoryview(data[i : i + 1]))
    assert bytes(out) == b"hello world" and bytes(err) == b"oops\n"


def test_pump_sends_stdin_then_half_closes_and_reads_everything():
    ours, theirs = socket.socketpair()
    received = bytearray()

    def container() -> None:
        while chunk := theirs.recv(65536):  # ends when dev8 half-closes
            received.extend(chunk)
        theirs.sendall(frame(1, b"x" * 3_000_000) + frame(2, b"done\n"))
        theirs.close()

    thread = threading.Thread(target=container)
    thread.start()
    out, err = bytearray(), bytearray()
    assert pump(ours, out.extend, err.extend, [b"secret\n", b"more\n"]) is None
    thread.join()
    assert bytes(received) == b"secret\nmore\n"
    assert len(out) == 3_000_000 and bytes(err) == b"done\n"
