"""Logs, audit trail, metrics, health and (optional) tracing of the gateway.

:func:`~gateway.observability.setup.setup_observability` is the one entry point ``create_app``
calls first; every other room reports through the
:class:`~gateway.observability.events.Observer` it returns and registers readiness checks with
:func:`~gateway.observability.health.add_check`. Nothing is re-exported here: importing
``gateway.observability.events`` must not load aiohttp.
"""
