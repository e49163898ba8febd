"""The HTTP server around the gateway app: per-connection deadlines, a connection limit,
graceful shutdown. ``gateway.serving.lifecycle`` starts it; nothing is re-exported here."""
