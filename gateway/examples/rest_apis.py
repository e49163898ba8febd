"""Example REST APIs behind the gateway's REST routes (seeds 000 and 004), in one app.

* the **Ketenindex** (``/ketenindex``): ``POST /ketenindex/gebeurtenissen`` stores an event;
  an *Uitkomst Overleg Beschikbaar gedeeld* event also records the overleg (its voorzitter
  and deelnemers), which ``GET /ketenindex/overleggen/{id}`` answers (the gateway's lookup;
  not in the route's OpenAPI document, so callers cannot reach it through the gateway);
  ``GET /ketenindex/gebeurtenissen?hoofdbetrokkene=&overleg=`` lists events.
* the **voorzitter's system** (``/voorzitter/uitkomsten/{id}``): the uitkomst of an overleg.
* **Klantinteracties** (``/klantinteracties/api/v1``): a small in-memory collection store
  for whatever the route lets through (the gateway's OpenAPI document decides which
  operations arrive).

Starting data (the demo's overleg and uitkomst) come from a YAML fixture
(``config/demo/ketenindex.yaml``), never from code. Every request received is kept in
``RECEIVED`` so tests can assert what the upstream saw.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

KI = "/klantinteracties/api/v1"
RECEIVED: web.AppKey[list[dict[str, Any]]] = web.AppKey("rest_received", list)
STATE: web.AppKey[dict[str, Any]] = web.AppKey("rest_state", dict)
BESCHIKBAAR = "beschikbaar_type"
"""Key of the fixture naming the event type that records an overleg."""


def load_fixture(path: Path | None) -> dict[str, Any]:
    """The example data: ``beschikbaar_type``, ``gebeurtenissen`` and ``uitkomsten``."""
    if path is None:
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping")
    return data


def create_rest_apis_app(fixture: Path | None = None) -> web.Application:
    """The example Ketenindex, voorzitter and Klantinteracties APIs."""
    data = load_fixture(fixture)
    app = web.Application()
    app[RECEIVED] = []
    state: dict[str, Any] = {
        "beschikbaar": data.get(BESCHIKBAAR, "UITKOMST_OVERLEG_BESCHIKBAAR_GEDEELD"),
        "gebeurtenissen": [],
        "overleggen": {},
        "uitkomsten": dict(data.get("uitkomsten") or {}),
        "collections": {},
    }
    app[STATE] = state
    for event in data.get("gebeurtenissen") or ():
        _store_event(state, dict(event))
    app.middlewares.append(_record)
    app.router.add_post("/ketenindex/gebeurtenissen", _publish)
    app.router.add_get("/ketenindex/gebeurtenissen", _query)
    app.router.add_get("/ketenindex/overleggen/{id}", _overleg)
    app.router.add_get("/voorzitter/uitkomsten/{id}", _uitkomst)
    app.router.add_route("*", KI + "/{collection}", _collection)
    app.router.add_route("*", KI + "/{collection}/{uuid}", _item)
    return app


@web.middleware
async def _record(request: web.Request, handler: Any) -> web.StreamResponse:
    body = await request.read()
    request.app[RECEIVED].append(
        {
            "method": request.method,
            "path_qs": request.raw_path,
            "body": body,
            "headers": dict(request.headers),
        }
    )
    response: web.StreamResponse = await handler(request)
    return response


def _store_event(state: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    event.setdefault("id", str(uuid.uuid4()))
    state["gebeurtenissen"].append(event)
    if event.get("type") == state["beschikbaar"]:
        state["overleggen"][event["overlegId"]] = {
            "overlegId": event["overlegId"],
            "hoofdbetrokkene": event.get("hoofdbetrokkene"),
            "voorzitter": event.get("voorzitter"),
            "deelnemers": event.get("deelnemers") or [],
            "inzageUri": event.get("inzageUri"),
        }
    return event


async def _publish(request: web.Request) -> web.Response:
    event = await request.json()
    return web.json_response(_store_event(request.app[STATE], event), status=201)


async def _query(request: web.Request) -> web.Response:
    wanted = request.query
    found = [
        e
        for e in request.app[STATE]["gebeurtenissen"]
        if e.get("overlegId") == wanted.get("overleg")
        and e.get("hoofdbetrokkene") == wanted.get("hoofdbetrokkene")
        and ("type" not in wanted or e.get("type") == wanted["type"])
    ]
    return web.json_response(found)


async def _overleg(request: web.Request) -> web.Response:
    overleg = request.app[STATE]["overleggen"].get(request.match_info["id"])
    if overleg is None:
        return web.json_response({"error": "unknown overleg"}, status=404)
    return web.json_response(overleg)


async def _uitkomst(request: web.Request) -> web.Response:
    uitkomst = request.app[STATE]["uitkomsten"].get(request.match_info["id"])
    if uitkomst is None:
        return web.json_response({"error": "unknown uitkomst"}, status=404)
    return web.json_response(uitkomst)


async def _collection(request: web.Request) -> web.Response:
    items = request.app[STATE]["collections"].setdefault(request.match_info["collection"], {})
    if request.method == "POST":
        item = {"uuid": str(uuid.uuid4()), **(await request.json())}
        items[item["uuid"]] = item
        return web.json_response(item, status=201)
    return web.json_response({"count": len(items), "results": list(items.values())})


async def _item(request: web.Request) -> web.Response:
    items = request.app[STATE]["collections"].setdefault(request.match_info["collection"], {})
    key = request.match_info["uuid"]
    if key not in items:
        return web.json_response({"detail": "Niet gevonden."}, status=404)
    if request.method == "DELETE":
        del items[key]
        return web.Response(status=204)
    if request.method == "PATCH":
        items[key].update(await request.json())
    return web.json_response(items[key])
