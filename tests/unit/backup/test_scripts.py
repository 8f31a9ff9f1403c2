"""The helper programs' argv and the lines they report, without an engine (their behaviour
is tested against the real engine in tests/integration/backup)."""

import subprocess

import pytest

from dev8.backup import scripts


def test_backup_program_leaves_out_special_files_and_the_restore_area():
    argv = scripts.backup_argv("zstd")
    assert argv[:2] == ["bash", "-c"]
    script = argv[2]
    assert "-path ./.dev8-restore -prune" in script
    assert "-type p -o -type s -o -type b -o -type c" in script
    assert "--format=posix" in script and "--sparse" in script and "--numeric-owner" in script
    assert "zstd -T0 -3" in script and "> /archive" in script
    assert "pigz -c" in scripts.backup_argv("gzip")[2]


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_every_program_is_valid_bash(compression):
    for argv in (
        scripts.backup_argv(compression),
        scripts.extract_argv(compression, 1234, "tok"),
        scripts.place_argv("/scratch/tree/home/dev8", "tok"),
        scripts.clean_argv(),
        scripts.du_argv(["/a", "/b c"], 2),
        scripts.ownership_argv(["/home/dev8"], 1000),
    ):
        assert subprocess.run(["bash", "-n", "-c", argv[2]]).returncode == 0


def test_extract_reads_exactly_the_data_before_the_manifest():
    argv = scripts.extract_argv("zstd", 4096, "tok")
    assert argv[-2:] == ["4096", "tok"]
    assert 'head -c "$1" /archive' in argv[2] and "sha256sum" in argv[2]
    assert "--numeric-owner" in argv[2] and "/target/.dev8-restore/incoming" in argv[2]


def test_staging_removes_a_planted_link_before_making_the_area():
    for script in (scripts.extract_argv("zstd", 1, "tok")[2], scripts.place_argv("/x", "t")[2]):
        removal = script.index('rm -f -- "$area"')
        assert '[ -L "$area" ]' in script and removal < script.index("prepare")


def test_placing_copies_the_fetched_tree_as_it_is():
    argv = scripts.place_argv("/scratch/tree/workspace", "tok")
    assert argv[-2:] == ["/scratch/tree/workspace", "tok"]
    assert 'cp -a --no-target-directory -- "$1" /target/.dev8-restore/incoming' in argv[2]
    assert scripts.clear_scratch_argv(["1-ab"]) == [
        "rm", "-rf", "--one-file-system", "--", "/scratch/1-ab",
    ]  # fmt: skip


def test_swap_program_is_the_agents_module():
    argv = scripts.swap_argv("install", "tok", ["/volumes/home", "/volumes/workspace"])
    assert argv[:2] == ["python3", "-c"]
    assert "def install(" in argv[2]
    assert argv[3:] == ["install", "tok", "/volumes/home", "/volumes/workspace"]


def test_chown_never_follows_links():
    assert scripts.chown_argv(["/home/dev8"], 1000, 1000) == [
        "chown", "-R", "-h", "1000:1000", "/home/dev8",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "line,parsed",
    [
        ("tar: dev8-progress W: 10229760 (9.8MiB, 30MiB/s)", ("progress", {"bytes": 10229760})),
        ("tar: dev8-progress R: 20 (20B, 1B/s)", ("progress", {"bytes": 20})),
        (
            "dev8-scan entries=3 files=2 bytes=99",
            ("scan", {"entries": "3", "files": "2", "bytes": "99"}),
        ),
        (
            'dev8-skipped {"count": 3, "paths": ["./a fifo"]}',
            ("skipped", {"count": 3, "paths": ["./a fifo"]}),
        ),
        ('dev8-skipped ["./old shape"]', None),
        ("dev8-skipped [[[[[[", None),
        ("dev8-clean npm lots 20", None),
        ("dev8-result sha256=ab entries=4", ("result", {"sha256": "ab", "entries": "4"})),
        ("dev8-clean npm 100 20", ("clean", {"name": "npm", "before": 100, "after": 20})),
        ("tar: ./x: file changed as we read it", None),
        ("anything else", None),
    ],
)
def test_parse_line(line, parsed):
    assert scripts.parse_line(line) == parsed
