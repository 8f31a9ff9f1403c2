"""The workspace store: SQLAlchemy over SQLite (local mode) or PostgreSQL (server)."""
