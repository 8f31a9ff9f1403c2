"""Workspace operations over a store and a provider; shared by the CLI and the server."""
