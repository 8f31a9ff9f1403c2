"""`python -m dev8.cli.warm SOCKET`: the warm process (``dev8.cli.warm``), started by a
`dev8` command that found none."""

import sys

from dev8.cli.warm.server import main

sys.exit(main(sys.argv[1:]))
