"""The policy enforcement point: authenticate -> analyse -> decide -> forward.

Each step is its own module (:mod:`~gateway.pep.authenticate`, :mod:`~gateway.pep.analyse`,
:mod:`~gateway.pep.decide`, :mod:`~gateway.pep.forward`); :mod:`~gateway.pep.gates` holds
one route's analyse, scope and policy gates (shared with ``policy explain``),
:mod:`~gateway.pep.pipeline` runs them for one route, :mod:`~gateway.pep.setup` builds the
routes from the config, :mod:`~gateway.pep.explain` runs the gates offline for ``policy
explain``.
"""

from gateway.pep.gates import RouteGates, route_facts
from gateway.pep.pipeline import RouteHandler, RoutePlan
from gateway.pep.responses import refusal_response
from gateway.pep.setup import PEP, Pep, build_pep, setup_pep

__all__ = [
    "PEP",
    "Pep",
    "RouteGates",
    "RouteHandler",
    "RoutePlan",
    "build_pep",
    "refusal_response",
    "route_facts",
    "setup_pep",
]
