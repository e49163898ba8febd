"""``GET /adresboek``: the network's adresboek as loaded (interim iWlz format), unchanged.

The caller needs a bearer token of a trusted issuer whose audience is this endpoint's public
URL (verified by the PEP's own :class:`TokenVerifier`); no scope. The answer is the last
good adresboek: a reload that is refused leaves it as it was.
"""

from __future__ import annotations

from aiohttp import web

from gateway.adresboek import AdresboekSource
from gateway.config.model import ADRESBOEK_PATH, GatewayConfig
from gateway.observability.http import counted
from gateway.pep.readonly import read_only
from gateway.tokens.verifier import TokenVerifier, VerifiedToken


def setup_adresboek(
    app: web.Application, config: GatewayConfig, verifier: TokenVerifier, source: AdresboekSource
) -> None:
    """Add ``GET /adresboek`` to *app*, answering from *source* live."""

    async def answer(request: web.Request, token: VerifiedToken) -> web.Response:
        active = source.active
        return web.json_response(active.document, headers={"ETag": f'"{active.version}"'})

    audience = config.public_url.rstrip("/") + ADRESBOEK_PATH
    app.router.add_get(ADRESBOEK_PATH, counted(app, read_only(verifier, audience, answer)))
