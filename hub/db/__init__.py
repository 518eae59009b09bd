"""Postgres: pool, migrations, named queries."""
