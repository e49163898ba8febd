"""Forwarding allowed requests to the deelnemer's resource server (streaming, pooled)."""

from gateway.proxy.headers import (
    CLAIMS_HEADER,
    HOP_BY_HOP,
    caller_response_headers,
    upstream_request_headers,
)
from gateway.proxy.upstream import Forwarded, Upstream, UpstreamPool

__all__ = [
    "CLAIMS_HEADER",
    "HOP_BY_HOP",
    "Forwarded",
    "Upstream",
    "UpstreamPool",
    "caller_response_headers",
    "upstream_request_headers",
]
