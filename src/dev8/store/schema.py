"""The schema version this code reads and writes, without importing SQLAlchemy (the
read-only view, ``dev8.store.readonly``, checks it too)."""

# The newest migration in ``migrations/versions``; a test checks it against Alembic's head.
SCHEMA_HEAD = "0008"
