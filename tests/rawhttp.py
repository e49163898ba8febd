"""Raw HTTP/1.1 over a socket, for requests no HTTP client library will send (header bytes
that are not ASCII or not UTF-8), and the raw bytes of the answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first header *name* (case-insensitive), or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


async def raw_post(
    host: str, port: int | None, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> RawResponse:
    """POST *body* with exactly these header bytes; read the answer to the end."""
    lines = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: " + f"{host}:{port}".encode()]
    lines += [name + b": " + value for name, value in headers]
    lines += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, content = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = [tuple(line.split(": ", 1)) for line in header_lines]
    return RawResponse(int(status_line.split()[1]), [(k, v) for k, v in parsed], content)
