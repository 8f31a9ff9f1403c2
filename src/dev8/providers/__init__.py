"""Backends that run workspaces. Each implements ``dev8.providers.base.Provider``."""
