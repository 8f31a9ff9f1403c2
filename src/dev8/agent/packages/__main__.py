"""`python -m dev8.agent.packages COMMAND`: the entry point of the image's apt/dpkg hooks
and of the agent's restore.

  record         record the current state (apt/dpkg hooks, `dev8 rebuild`)
  capture-debs   keep local .deb files named on stdin (apt's Pre-Install-Pkgs hook)
  restore        bring recorded packages back (the agent, at container start)
  forget PKG...  stop recording packages
  show           print the recorded state and the last restore report as JSON
  baseline       record the image's own state (image build)
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from dev8.agent.packages import record as recorder
from dev8.agent.packages.layout import Layout, Recorded, read_json


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    layout = Layout()
    if command == "record":
        recorder.record(layout)
    elif command == "capture-debs":
        recorder.capture_debs(sys.stdin.read().splitlines(), layout)
    elif command == "restore":
        from dev8.agent.packages.restore import restore

        report = restore(layout)
        print(json.dumps(report.__dict__))
        return 0 if report.status == "complete" else 3
    elif command == "forget":
        dropped = recorder.forget(argv[1:], layout)
        print(json.dumps({"forgotten": argv[1:], "were_recorded": dropped}))
    elif command == "show":
        print(
            json.dumps(
                {
                    "recorded": asdict(Recorded.load(layout.state)),
                    "restore": read_json(layout.report),
                }
            )
        )
    elif command == "baseline":
        recorder.baseline()
    else:
        print(__doc__)
        return 0 if command in ("help", "-h", "--help") else 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
