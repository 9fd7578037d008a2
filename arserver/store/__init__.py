"""Storage: the database schema, its migrations, and repositories (SQLite or PostgreSQL)."""
