"""Running the gateway as a process: ``nid-gateway serve`` (:mod:`.serve`, with the pre-fork
supervisor of ``--workers`` in :mod:`.workers`) and ``nid-gateway demo`` (:mod:`.demo`), both
starting and stopping the gateway through :mod:`.lifecycle`. The HTTP server itself (protocol,
runner) is :mod:`gateway.server`. Nothing is re-exported here."""
