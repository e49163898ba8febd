"""``GET /catalogus/notificatietypen``: the network's notificatietype catalogue (seed 001
section 4, the Service Directory), served from the rows the policies decide with.

There is no second copy: the handler reads table ``notificatietypen`` of a loaded policy
set, so a policy reload changes the catalogue and the decisions at the same moment. The
caller needs a bearer token of a trusted issuer whose audience is this endpoint's public
URL (verified by the PEP's own :class:`TokenVerifier`); no scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway.config.model import GatewayConfig
from gateway.observability.http import counted
from gateway.pep.readonly import read_only
from gateway.policy import PolicyStore
from gateway.tokens.verifier import TokenVerifier, VerifiedToken

PATH = "/catalogus/notificatietypen"
TABLE = "notificatietypen"
FIELDS = {
    "notificatieTypeID": "code",
    "notificatieType": "notificatie_type",
    "notificatieOmschrijving": "omschrijving",
    "idTypeAbonnee": "id_type_abonnee",
    "eventType": "event",
    "objectIDType": "object_id_type",
    "bronhouder": "bronhouder",
}
"""The published field (seed 001 section 4.2) -> the catalogue column it comes from."""


def catalogue_rows(stores: Mapping[Any, PolicyStore]) -> tuple[Mapping[str, Any], ...] | None:
    """The catalogue table of the first loaded policy set that has one (None: no set has)."""
    for store in stores.values():
        rows = store.active.data.tables.get(TABLE)
        if rows is not None:
            return rows
    return None


def published(row: Mapping[str, Any]) -> dict[str, Any]:
    """One catalogue row as the Service Directory publishes it (absent columns as null)."""
    return {name: row.get(column) for name, column in FIELDS.items()}


def setup_catalogus(
    app: web.Application,
    config: GatewayConfig,
    verifier: TokenVerifier,
    stores: Mapping[Any, PolicyStore],
) -> None:
    """Add ``GET`` :data:`PATH` to *app*, reading *stores* (the PEP's policy stores) live."""
    audience = config.public_url.rstrip("/") + PATH

    async def answer(request: web.Request, token: VerifiedToken) -> web.Response:
        rows = catalogue_rows(stores)
        if rows is None:
            raise web.HTTPNotFound(text=f"no policy set holds a {TABLE} table")
        return web.json_response([published(row) for row in rows])

    app.router.add_get(PATH, counted(app, read_only(verifier, audience, answer)))
