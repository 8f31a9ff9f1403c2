"""The in-container agent (the seed's "workspace supervisor").

Runs as the container's main process under tini: prepares the home, supervises sshd and
code-server, and serves health and status on port 9000. Standard library only.
"""

VERSION = "0.1.0"
