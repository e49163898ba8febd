"""The durable store (gateway/store/) on SQLite and on a real PostgreSQL."""
