"""The gateway's durable store: subscriptions (issue 14) and the delivery outbox (issue 15).

Two backends behind one typed async API (:mod:`gateway.store.api`): SQLite embedded, one
file under the data dir (the default), and PostgreSQL for several replicas sharing one
store. ``docs/store.md`` describes both; :func:`gateway.store.open.open_store` picks one from
the ``store:`` configuration. Nothing is re-exported here.
"""
