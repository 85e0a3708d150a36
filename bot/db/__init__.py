"""The veteran database: models, engine and sessions, migrations (Alembic)."""
