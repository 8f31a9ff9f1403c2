from dev8.agent.activity import established_remote_connections

HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n"
)


def row(local: str, remote: str, state: str) -> str:
    return f"   0: {local} {remote} {state} 00000000:00000000 00:00000000 00000000  0 0 1 1\n"


def test_counts_established_remote_connections_only(tmp_path):
    table = tmp_path / "tcp"
    table.write_text(
        HEADER
        + row("00000000:08AE", "00000000:0000", "0A")  # listening
        + row("020011AC:08AE", "010011AC:D431", "01")  # from the bridge: counts
        + row("0100007F:08AE", "0100007F:B0B0", "01")  # our own probe
        + row("020011AC:1F90", "010011AC:D432", "01")
    )  # the IDE port
    assert established_remote_connections(2222, (str(table),)) == 1
    assert established_remote_connections(8080, (str(table),)) == 1
    assert established_remote_connections(9000, (str(table), str(tmp_path / "none"))) == 0
