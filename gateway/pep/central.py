"""The central notification route ``POST /notificaties/graphql``, routed by the adresboek.

A bronhouder posts any ``zendNotificatie`` here (audience: this route's public URL). The
request is authenticated and analysed as on a deelnemer's route; then the body's recipient
(``notificaties.recipient`` names its argument paths) stands in for the route's deelnemer:
the scope gate wants the recipient's kind, and the policies decide with the recipient as
``route.deelnemer_*``, exactly as on the recipient's own route. An allowed notification is
forwarded (same headers, body unchanged) to the recipient's endpoint in the adresboek. A
recipient the adresboek does not know is ``400`` ``ontvanger is not valid``, never forwarded.

The recipient -> endpoint step is :meth:`gateway.adresboek.AdresboekSource.resolve`, so a
delivery worker finds the same endpoint for a stored notification.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.adresboek import AdresboekSource
from gateway.config.model import (
    NOTIFICATIES_PATH,
    Deelnemer,
    NotificatiesConfig,
    RouteConfig,
)
from gateway.facts import OperationFacts, RouteFacts
from gateway.observability.events import Observer
from gateway.pep.gates import RouteGates
from gateway.pep.pipeline import RouteHandler, RoutePlan
from gateway.proxy.upstream import Upstream, UpstreamPool
from gateway.refusals import ValidationFailed
from gateway.tokens.verifier import TokenVerifier

REASON = "ontvanger is not valid"


def central_route(config: NotificatiesConfig) -> RouteConfig:
    """The central route as a route without deelnemer or upstream of its own (both are the
    recipient's, per request): the settings the shared pipeline reads."""
    return RouteConfig.model_construct(
        path=NOTIFICATIES_PATH,
        upstream="",
        deelnemer=Deelnemer.model_construct(id_type="", id="", kind="", name=""),
        audience=config.audience,
        policies=config.policies,
        required_scopes={},
        scope_default=None,
        timeouts=config.timeouts,
        pool_size=config.pool_size,
        allow_plain_jwt=config.allow_plain_jwt,
        strict_input=config.strict_input,
        forward_authorization=config.forward_authorization,
    )


def not_valid(operation: OperationFacts) -> ValidationFailed:
    """The refusal for a recipient the central route cannot deliver to, worded as the
    notification policy words its refusals (``ZendNotificatie mutation: <reason>``)."""
    name = operation.display_name
    message = f"{name[:1].upper()}{name[1:]} {operation.operation_type}: {REASON}"
    return ValidationFailed(message, reason=REASON)


def recipient(config: NotificatiesConfig, operation: OperationFacts) -> tuple[str, str]:
    """The body's recipient (identifier type, identifier); refused when absent."""
    id_type = operation.argument(config.recipient.id_type)
    ident = operation.argument(config.recipient.id)
    if not isinstance(id_type, str) or not isinstance(ident, str):
        raise not_valid(operation)
    return id_type, ident


def recipient_gates(
    config: NotificatiesConfig,
    kind_of: Callable[[str], str | None],
    route_gates: RouteGates,
    operation: OperationFacts,
) -> RouteGates:
    """*route_gates* (the central route's analyser and policy) for the body's recipient: its
    kind in the scopes, itself as the route's deelnemer (also ``policy explain``'s)."""
    id_type, ident = recipient(config, operation)
    kind = kind_of(id_type)
    if kind is None:
        raise not_valid(operation)
    fields = {"kind": kind, "id_type": id_type, "id": ident}
    facts = RouteFacts(
        path=NOTIFICATIES_PATH,
        audience=config.audience,
        deelnemer_id_type=id_type,
        deelnemer_id=ident,
        deelnemer_kind=kind,
        strict_input=config.strict_input,
    )
    scopes = {field: t.format_map(fields) for field, t in config.required_scopes.items()}
    return RouteGates(facts, route_gates.analyser, route_gates.policy, scopes)


class CentralRouteHandler(RouteHandler):
    """The pipeline of a deelnemer route, with the deelnemer and upstream per request."""

    def __init__(
        self,
        plan: RoutePlan,
        verifier: TokenVerifier,
        observer: Observer,
        *,
        config: NotificatiesConfig,
        adresboek: AdresboekSource,
        upstreams: UpstreamPool,
    ) -> None:
        super().__init__(plan, verifier, observer)
        self.config = config
        self.adresboek = adresboek
        self._pool = upstreams
        self._upstreams: dict[str, Upstream] = {}

    def _gates_for(self, operation: OperationFacts) -> RouteGates:
        """The recipient's gates: its kind in the scopes, itself as the route's deelnemer."""
        return recipient_gates(self.config, self.adresboek.kind, self._gates, operation)

    def _upstream_for(self, operation: OperationFacts, gates: RouteGates) -> Upstream:
        """The recipient's endpoint in the adresboek (one upstream per endpoint URL)."""
        found = self.adresboek.resolve(gates.facts.deelnemer_id_type, gates.facts.deelnemer_id)
        if found is None:
            raise not_valid(operation)
        upstream = self._upstreams.get(found.endpoint)
        if upstream is None:
            route = self.plan.config.model_copy(update={"upstream": found.endpoint})
            upstream = self._upstreams[found.endpoint] = self._pool.register(route)
        return upstream
