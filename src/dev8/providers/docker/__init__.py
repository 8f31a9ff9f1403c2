"""The local Docker engine backend."""
