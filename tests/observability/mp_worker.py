"""A gateway worker process for the multiprocess metrics test (run as a script).

Usage: ``python mp_worker.py CONFIG PORT_FILE``. Serves the observability app plus ``POST
/emit`` (records one allowed decision through the real observer) until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from aiohttp import web

from gateway.appkeys import OBSERVER
from gateway.config.loader import load_config
from tests.fixtures.observability import decision, observability_app


async def emit(request: web.Request) -> web.Response:
    request.app[OBSERVER].decision(decision())
    return web.json_response({"ok": True})


async def main(config_path: str, port_file: str) -> None:
    app = observability_app(load_config(Path(config_path)))
    app.router.add_post("/emit", emit)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    Path(port_file + ".tmp").write_text(str(port))
    Path(port_file + ".tmp").rename(port_file)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
