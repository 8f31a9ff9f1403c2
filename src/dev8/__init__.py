"""dev8: persistent cloud development workspaces."""

__version__ = "0.1.0"
