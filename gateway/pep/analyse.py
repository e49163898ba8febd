"""Step 2, analyse: what the request will execute.

The body is read within the size limit (a declared ``Content-Length`` over the limit is
refused before a byte is read; a chunked body is counted while it streams), the content
type is checked, and the GraphQL analyser (cached per query text) resolves the operation
into :class:`OperationFacts`. The original bytes are kept: they are what the upstream gets.

A compressed body (any ``Content-Encoding`` but ``identity``) is refused with ``415`` before a
byte is read: analysing the decompressed text and forwarding it under the caller's
``Content-Encoding`` would let the upstream read something else than what was decided on.
"""

from __future__ import annotations

import asyncio

from aiohttp import hdrs, web

from gateway.facts import OperationFacts
from gateway.graphql.analyser import Analyser
from gateway.graphql.request import parse_graphql_fields
from gateway.refusals import PayloadTooLarge, UnsupportedContentEncoding, content_coding


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Request body exceeds the configured limit of {limit} bytes", reason="body_too_large"
    )


def check_content_encoding(request: web.Request) -> None:
    """Refuse a body with a content coding (``415``, RFC 9110 section 15.5.16)."""
    values = request.headers.getall(hdrs.CONTENT_ENCODING, ())  # istr: no conversion
    coding = content_coding(values) if values else None
    if coding is not None:
        raise UnsupportedContentEncoding(
            f"Unsupported Content-Encoding {coding!r}: send the body uncompressed",
            reason="unsupported_content_encoding",
        )


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, at most *limit* bytes; :class:`PayloadTooLarge` beyond that.

    A compressed body is refused first (:func:`check_content_encoding`).
    """
    check_content_encoding(request)
    declared = request.content_length
    if declared is not None:
        # aiohttp's own limit (``request.read()`` enforces it) refuses as ours does.
        app_limit = request.client_max_size
        if declared > limit or (app_limit and declared > app_limit):
            raise _too_large(limit)
        content = request.content
        if content.is_eof():
            # The whole body came with the head (nearly every GraphQL request): take the
            # buffered bytes as they are, without a coroutine and its future. The parser
            # stopped at the declared length, so this is at most *declared* bytes.
            return content.read_nowait()
        try:
            # The parser stops at the declared length: one read of exactly that many
            # bytes, without read()'s loop, bytearray and copy.
            return await request.content.readexactly(declared)
        except asyncio.IncompleteReadError as exc:
            return exc.partial  # an early end without error: what arrived, as read() did
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def analyse(body: bytes, content_type: str | None, analyser: Analyser) -> OperationFacts:
    """Parse the GraphQL request (415/400 refusals) and resolve its operation."""
    return analyser.analyse_fields(*parse_graphql_fields(body, content_type))
