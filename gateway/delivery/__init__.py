"""Reliable delivery (seed 002, ``docs/delivery.md``): the async path stores an allowed
notification in the outbox and answers ``202``; the worker delivers it with retries until it
is delivered or dead (the uitvallijst); ``GET /deliveries/<id>`` and ``nid-gateway outbox``
show it."""
