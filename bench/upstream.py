"""A fixed-response resource server for the benchmarks (stands in for a deelnemer).

python bench/upstream.py PORT
"""

from __future__ import annotations

import sys

from aiohttp import web

ANSWER = b'{"data":{"zendNotificatie":{"notificatieID":"bench-1"}}}'


async def answer(request: web.Request) -> web.Response:
    """Drain the body, answer the same small JSON every time."""
    await request.read()
    return web.Response(body=ANSWER, content_type="application/json")


def main() -> None:
    app = web.Application()
    app.router.add_post("/graphql", answer)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
