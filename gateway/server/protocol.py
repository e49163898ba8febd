"""One client connection: aiohttp's ``RequestHandler`` plus the deadlines it lacks.

aiohttp closes an idle keep-alive connection (``keepalive_timeout``) but has no deadline
for a request head or body that trickles in, so one client could hold a connection (and a
file descriptor) open for as long as it keeps sending a byte now and then. This handler
adds two timers, each armed only while the connection waits for the client:

* **header**: from connecting, or from the first byte of the next request on a kept-alive
  connection, until the request head is complete. Expiry closes the connection.
* **body**: from the end of the head until the body is complete. Expiry answers
  ``408 Request Timeout`` (when no response has begun) and closes the connection.

It also keeps a request whose body is still arriving alive through a graceful shutdown
(aiohttp stops reading input at once, so that body would never complete), and answers a
malformed request without a traceback in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from gateway.config.model import ClientTimeouts
from gateway.observability.http import MALFORMED, Malformed
from gateway.observability.logs import get_logger


def _raw_response(status: int, reason: str, text: str) -> bytes:
    body = text.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


REQUEST_TIMEOUT = _raw_response(408, "Request Timeout", "408 request body not received in time\n")
BAD_BODY = _raw_response(400, "Bad Request", "400 malformed request body\n")

log = get_logger("gateway.server")


class GatewayRequestHandler(RequestHandler):
    """aiohttp's protocol for one connection, with header and body deadlines."""

    __slots__ = (
        "_body",
        "_body_done",
        "_body_timer",
        "_close_after_body",
        "_deadlines",
        "_header_timer",
    )

    def __init__(self, manager: web.Server, *, deadlines: ClientTimeouts, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._deadlines = deadlines
        self._body: StreamReader | None = None
        """The payload of the request whose body is still arriving."""
        self._body_timer: asyncio.TimerHandle | None = None
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_done: asyncio.Future[None] | None = None
        """Created by :meth:`shutdown` while a body is arriving; done when it is complete."""
        self._close_after_body = False

    @property
    def idle(self) -> bool:
        """No request is being handled: waiting for (the rest of) a request head."""
        return not self._request_in_progress and not self._messages and self._body is None

    # -- connection life -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the header deadline: a new connection must send a request head in time."""
        super().connection_made(transport)
        self._arm_header()

    def connection_lost(self, exc: BaseException | None) -> None:
        """Stop the timers; a shutdown waiting for a body need not wait any longer. A client
        gone before its body arrived is not an error of the handler: cancel the handler
        (the request cannot have been forwarded) instead of failing its body read."""
        self._cancel_timers()
        if self._body is not None and self._request_in_progress and self._task_handler:
            self._task_handler.cancel()
        self._finish_body()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse as aiohttp does, then move the deadlines to the connection's new state."""
        heads = self._request_count
        super().data_received(data)
        if self.transport is None:
            return
        if self._request_count != heads:  # one or more request heads are complete
            # Once per request: the timers inline, not through their methods (issue 17).
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            body = self._body
            if body is not None:
                if not body.is_eof() and body.exception() is None:
                    # A new message while the body is still open: the parser failed in the
                    # body (bad chunked encoding) and queued its error as the next request,
                    # leaving the handler waiting for a body that will never complete.
                    error = getattr(self._messages[-1][0], "exc", None) if self._messages else None
                    self._abort(BAD_BODY, 400, malformed=type(error).__name__)
                    return
                self._finish_body()
            payload = self._messages[-1][1] if self._messages else None
            if isinstance(payload, StreamReader) and not payload.is_eof():
                self._start_body(payload)
        elif self._body is not None:
            if self._body.is_eof() or self._body.exception() is not None:
                self._finish_body()
        elif data and self._header_timer is None:
            self._arm_header()  # the first bytes of the next request on this connection

    def resume_reading(self, resume_parser: bool = True) -> None:
        """Resume only what flow control paused. aiohttp's request body reader calls this
        after every chunk it hands out and at the body's end, and the protocol then parses
        an empty chunk (through :meth:`data_received`) and asks the transport to resume,
        for nothing when reading was never paused (a body within the reader's high water
        mark: every GraphQL request)."""
        if self._reading_paused:
            super().resume_reading(resume_parser)

    def close(self) -> None:
        """Close once the current response is sent; while a request's body is still
        arriving, only after that body is complete (a graceful shutdown calls this)."""
        if self._body is not None and self._request_in_progress:
            self._close_after_body = True
            return
        super().close()

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        """Graceful stop: first let a body that is still arriving complete (within
        *timeout*), since aiohttp's shutdown stops reading input at once."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        if self._body is not None and self._request_in_progress and timeout:
            self._body_done = loop.create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._body_done), timeout)
            timeout = max(0.0, timeout - (loop.time() - started))
        await super().shutdown(timeout)

    # -- malformed requests ---------------------------------------------------------------
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A client's mistake (4xx: malformed request line, header, chunked body) is
        answered without a traceback: the access log line, when on, records it."""
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        reason = type(exc).__name__ if exc is not None else "BadRequest"
        request[MALFORMED] = Malformed(reason, head_parsed=False)
        if self.access_logger is None:
            log.debug("malformed_request", status=status, error=reason, remote=request.remote)
        # The parser's message quotes the client's bytes; answer with the status only.
        response = web.Response(status=status, text=f"{status} {reason}\n")
        response.force_close()
        return response

    # -- deadlines ------------------------------------------------------------------------
    def _arm_header(self) -> None:
        self._header_timer = self._loop.call_later(self._deadlines.header, self._header_expired)

    def _disarm_header(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_expired(self) -> None:
        self._header_timer = None
        if self.idle:
            self.force_close()

    def _start_body(self, payload: StreamReader) -> None:
        self._body = payload
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = self._loop.call_later(self._deadlines.body, self._body_expired)

    def _finish_body(self) -> None:
        self._body = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if self._body_done is not None and not self._body_done.done():
            self._body_done.set_result(None)
        if self._close_after_body:
            self._close_after_body = False
            super().close()

    def _body_expired(self) -> None:
        self._body_timer = None
        self._abort(REQUEST_TIMEOUT, 408)

    def _abort(self, raw: bytes, status: int, *, malformed: str | None = None) -> None:
        """Answer the request whose body is arriving with *raw* (unless its response has
        begun), cancel its handler (as aiohttp's shutdown does) and close the connection.
        The access log, when on, gets the request's one line."""
        request = self._current_request
        transport = self.transport
        if self._request_in_progress and request is not None and transport is not None:
            if request.writer.output_size == 0:
                transport.write(raw)
                if malformed is not None:
                    request[MALFORMED] = Malformed(malformed, head_parsed=True)
                if self.access_logger is not None and self._logging_enabled:
                    self.access_logger.log(request, web.Response(status=status), 0.0)
            if self._task_handler is not None:
                self._task_handler.cancel()
        self._finish_body()
        self.force_close()

    def _cancel_timers(self) -> None:
        self._disarm_header()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
