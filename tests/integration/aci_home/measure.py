"""How long the syncs of a realistic home take: `python -m tests.integration.aci_home.measure`.

Not a test (timings never decide a pass). The real image, agent and restic on this machine's
engine; the share is a local directory, not SMB, so on Azure Files add the share's latency
and bandwidth (what crosses it is restic's new packs only). The home: a venv with the
distribution's Python packages copied in, a Node project with npm's modules and a `.bin`
link, a git repository of /usr/share/doc with a symlink, and 60 MB of build output.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import docker

from dev8.imagebuild import layers
from dev8.providers.docker.client import connect
from tests.integration.aci_home.test_synced_home import (
    TOKEN,
    as_dev8,
    status,
    wait_for_syncs,
)
from tests.integration.helpers import wait_healthy
from tests.integration.owned import OWNER

FILL = r"""
set -e
cd ~
python3 -m venv venv
cp -r /usr/lib/python3/dist-packages/. venv/lib/python3.11/site-packages/
mkdir -p proj-node/node_modules/.bin && cp -r /opt/node/lib/node_modules/. proj-node/node_modules/
ln -s ../npm/bin/npm-cli.js proj-node/node_modules/.bin/npm
mkdir -p build && head -c 60000000 /dev/urandom > build/artefact.bin
mkdir -p /workspace/repo && cd /workspace/repo && git init -q && cp -r /usr/share/doc docs
ln -s docs/git link && git add -A && git -c user.email=m@e -c user.name=m commit -qm one
du -sm ~ /workspace 2>/dev/null | cut -f1 | paste -sd' '
"""


def run(client: docker.DockerClient, share: Path) -> tuple[object, int]:
    container = client.containers.run(
        layers.workspace_image(),
        detach=True,
        environment={
            "DEV8_AGENT_TOKEN": TOKEN,
            "DEV8_SYNC_ROOT": "/mnt/dev8-store",
            "DEV8_SYNC_PASSWORD": "measure",
            "DEV8_SYNC_INTERVAL_S": "10",
        },
        volumes={str(share): {"bind": "/mnt/dev8-store", "mode": "rw"}},
        ports={"9000/tcp": ("127.0.0.1", None)},
        labels={"dev.dev8.owner": OWNER},
    )
    while True:
        container.reload()
        if container.ports.get("9000/tcp"):
            port = int(container.ports["9000/tcp"][0]["HostPort"])
            break
        time.sleep(0.1)
    wait_healthy(port, timeout=300)
    return container, port


def durations(trees: dict) -> str:
    return " + ".join(
        f"{name} {tree['last_sync']['duration_s']:.1f} s" for name, tree in trees.items()
    )


def main() -> None:
    client = connect()
    with tempfile.TemporaryDirectory() as scratch:
        share = Path(scratch)
        started = time.monotonic()
        first, port = run(client, share)
        took = time.monotonic() - started
        print(f"first start (creates both repositories): healthy in {took:.1f} s")
        try:
            sizes = as_dev8(first, FILL).split()
            print(f"home {sizes[0]} MB, /workspace {sizes[1]} MB")
            print("first sync (everything new):", durations(wait_for_syncs(port, time.time())))
            print("sync with nothing changed:", durations(wait_for_syncs(port, time.time())))
            as_dev8(first, "echo change >> ~/venv/pyvenv.cfg && date > /workspace/repo/new")
            print("sync after a small change:", durations(wait_for_syncs(port, time.time())))
            as_dev8(first, "head -c 5000000 /dev/urandom > ~/build/more.bin")
            stopping = time.monotonic()
            first.stop(timeout=120)
            final = re.findall(r"final sync done in ([0-9.]+) s", first.logs().decode())
            print(
                f"clean stop (5 MB new): docker stop took {time.monotonic() - stopping:.1f} s, "
                f"the final sync {final[-1]} s"
            )
        finally:
            first.remove(force=True)
        repository = sum(f.stat().st_size for f in share.rglob("*") if f.is_file()) / 1e6
        print(f"both repositories on the share: {repository:.0f} MB")
        started = time.monotonic()
        second, port = run(client, share)
        try:
            print(
                f"next start (restores both trees): healthy in {time.monotonic() - started:.1f} s"
            )
            print("first sync after a restore:", durations(wait_for_syncs(port, time.time())))
            print("agent resident memory:", as_dev8(second, "ps -o rss= -C python").strip(), "KiB")
            assert status(port)["sync"]["trees"]["home"]["restore_error"] is None
        finally:
            second.remove(force=True)


if __name__ == "__main__":
    main()
