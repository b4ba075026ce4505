"""Persistence: SQLAlchemy models, sessions and repositories (shared by API and worker)."""
