"""One observation pass of the Kubernetes provider (``statuses``, what the server's reconciler
and `dev8 ls` call) over 1,000 workspaces, against the same pass over 10 (the baseline): API
requests and time, as ratios. API mock: no real cluster; the provider talks over real HTTP,
through the official client, to the Kubernetes API mock of the tests (kmock, on loopback).

The workspaces are stored in the mock directly (what `create` and `start` would have made:
claims, the Secret recording each, a Pod for half of them, running), so that only the pass is
measured. The time includes the mock serving the lists (its JSON of every object), on the
same machine. Goal: requests constant, time at most linear (at most 100x for 100x the
workspaces).

    .venv/bin/python benchmarks/kubernetes.py [--workspaces 1000] [--baseline 10] [--runs 5]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file's name is the client's: its folder must not shadow the ``kubernetes`` package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))  # tests.integration.kubernetes.apimock: the API mock

from tests.integration.kubernetes.apimock import MockCluster, running_status  # noqa: E402

from dev8.core.naming import new_workspace_id  # noqa: E402
from dev8.core.resources import Resources  # noqa: E402
from dev8.providers.base import WorkspaceSpec  # noqa: E402
from dev8.providers.kubernetes.provider import (  # noqa: E402
    KubernetesProvider,
    stored_pod,
    workspace_record,
)
from dev8.providers.kubernetes.settings import KubernetesSettings  # noqa: E402
from dev8.providers.kubernetes.specs import ClusterOptions, claim_manifests  # noqa: E402

OPTIONS = ClusterOptions(namespace="dev8-bench")


def seed(server: MockCluster, count: int) -> set[str]:
    """``count`` workspaces as create and start leave them; the ids of the running ones."""
    running = set()
    for n in range(count):
        spec = WorkspaceSpec(
            workspace_id=new_workspace_id(),
            name=f"b{n}",
            owner=f"user{n % 50}",
            image="registry.test/dev8/workspace:1",
            resources=Resources(2, 4096),
            env={"DEV8_AGENT_TOKEN": secrets.token_urlsafe(16)},
            published=("agent",),
        )
        record = workspace_record(spec, OPTIONS)
        for manifest in [*claim_manifests(spec, OPTIONS), record]:
            server.seed(manifest)
        if n % 2 == 0:
            pod = stored_pod(record)
            address = f"10.42.{n // 250}.{n % 250 + 1}"
            pod["status"] = running_status(pod["spec"]["containers"][0], address)
            server.seed(pod)
            running.add(spec.workspace_id)
    return running


def measure(count: int, runs: int) -> tuple[int, float]:
    """Requests per pass and the median seconds of ``runs`` passes over ``count``."""
    with tempfile.TemporaryDirectory() as folder, MockCluster() as server:
        running = seed(server, count)
        kubeconfig = server.kubeconfig(Path(folder) / "kubeconfig", OPTIONS.namespace)
        provider = KubernetesProvider(
            server.api(kubeconfig, OPTIONS.namespace), KubernetesSettings(OPTIONS)
        )
        provider.statuses()  # a warm connection, as the server's reconciler has
        times, requests = [], set()
        for _ in range(runs):
            with server.counting() as made:
                started = time.perf_counter()
                seen = provider.statuses()
                times.append(time.perf_counter() - started)
            requests.add(len(made))
            assert len(seen) == count, (len(seen), count)
            assert {wid for wid, status in seen.items() if status.running} == running
        assert len(requests) == 1, requests
        return requests.pop(), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=1000)
    parser.add_argument("--baseline", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base_requests, base_time = measure(args.baseline, args.runs)
    requests, seconds = measure(args.workspaces, args.runs)
    scale = args.workspaces / args.baseline
    print(f"{'workspaces':>12} {'requests':>9} {'pass (ms)':>10} {'ms/workspace':>13}")
    rows = ((args.baseline, base_requests, base_time), (args.workspaces, requests, seconds))
    for count, made, took in rows:
        print(f"{count:>12} {made:>9} {took * 1000:>10.1f} {took * 1000 / count:>13.3f}")
    request_ratio, time_ratio = requests / base_requests, seconds / base_time
    print(f"requests: {request_ratio:.2f}x (goal: 1x, constant)")
    print(f"time:     {time_ratio:.1f}x for {scale:.0f}x the workspaces (goal: <= {scale:.0f}x)")
    ok = request_ratio == 1 and time_ratio <= scale
    print("goal met" if ok else "GOAL MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
