"""What the engine remembers between checks and requests never decides another request.

The date windows keep one verdict per equal filter for the request being decided, and the
checks that read only ``operation.selected`` are decided once per plan and selection. Each
test below sends requests through one cached analyser, as a register route does (one plan
per query text, so the same selection tuple every time), alternating requests that differ
in one date or one selected field, and checks every decision and its reason."""

from __future__ import annotations

import json
from typing import Any

from gateway.config.model import GraphQLLimits, default_claim_mapping
from gateway.facts import DecisionInput, RouteFacts
from gateway.graphql import GraphQLRequest
from gateway.graphql.analyser import Analyser
from gateway.graphql.schema import load_schema
from gateway.policy import Decision, PolicySet, load_policy_set
from gateway.tokens.claims import map_claims
from tests.fixtures.policy import IWLZ, REPO

TEMPLATES = IWLZ / "raadplegingen" / "templates"
PATH = "/registers/bemiddelingsregister/graphql"
ROUTE = RouteFacts(
    path=PATH, audience=PATH, deelnemer_id_type="", deelnemer_id="", deelnemer_kind=""
)
READ = "registers/wlzbemiddelingsregister/bemiddelingen/bemiddeling:read"

WINDOW = (
    "{and: [{or: [{einddatum: {eq: null}}, {einddatum: {gte: $FROM}}]},"
    " {ingangsdatum: {ngt: $tot}}]}"
)
# Two selections of one list under one spec (venster-contactgegevens): the second's filter
# names its own variable, so two requests of one plan can differ in that one date.
TWO_SELECTIONS = """
query Contacten($id: UUID!, $agb: String!, $van: Date!, $moment: DateTime!, $tot: Date!,
                $ander: Date!) {
  bemiddelingspecificatie(where: {bemiddelingspecificatieID: {eq: $id}, instelling: {eq: $agb},
      toewijzingIngangsdatum: {eq: $van}, vaststellingMoment: {eq: $moment},
      toewijzingEinddatum: {eq: $tot}}) {
    bemiddelingspecificatieID
    bemiddeling {
      client {
        bsn
        contactgegevens(where: FIRST) { einddatum }
        ander: contactgegevens(where: SECOND) { einddatum }
      }
    }
  }
}
""".replace("FIRST", WINDOW.replace("$FROM", "$van")).replace(
    "SECOND", WINDOW.replace("$FROM", "$ander")
)
VARIABLES = {
    "id": "51000000-0000-4000-8000-000000000001",
    "agb": "12345678",
    "van": "2025-01-01",
    "moment": "2024-12-15T10:00:00.000+01:00",
    "tot": "2025-12-31",
}


class Route:
    """One register route: the policy set and an analyser that caches plans per text."""

    def __init__(self) -> None:
        self.policies: PolicySet = load_policy_set([IWLZ])
        self.analyser = Analyser(
            GraphQLLimits(),
            schema=load_schema(REPO / "config" / "schemas" / "bemiddelingsregister.graphql"),
        )
        self.token = map_claims(
            {
                "instantie_type": "Zorgaanbieder",
                "agb": "12345678",
                "client_id": "za",
                "scope": READ,
            },
            default_claim_mapping(),
        )

    def decide(self, query: str, variables: dict[str, Any]) -> Decision:
        operation = self.analyser.analyse(GraphQLRequest(query, variables))
        return self.policies.decide(DecisionInput(self.token, operation, ROUTE))


def qbr_0002() -> tuple[str, dict[str, Any]]:
    return (
        (TEMPLATES / "QBR-0002-ZA.graphql").read_text(),
        json.loads((TEMPLATES / "QBR-0002-ZA.variables.json").read_text()),
    )


def test_a_window_verdict_never_reaches_a_request_that_differs_in_one_date() -> None:
    route = Route()
    query, variables = qbr_0002()
    early = {**variables, "dagVaststellingMoment": "2024-01-01"}  # before the toewijzing
    for _ in range(3):
        assert route.decide(query, variables).allow
        refused = route.decide(query, early)
        assert not refused.allow
        assert refused.rule == "iwlz-bemiddelingspecificatie/venster-bemiddelingspecificatie"
        assert "needs its date window" in (refused.reason or "")


def test_equal_filters_share_a_verdict_and_a_different_one_in_the_same_request_does_not() -> None:
    route = Route()
    same = {**VARIABLES, "ander": VARIABLES["van"]}
    earlier = {**VARIABLES, "ander": "2024-06-30"}  # the second selection opens too early
    for _ in range(3):
        allowed = route.decide(TWO_SELECTIONS, same)
        assert allowed.allow, allowed.message
        refused = route.decide(TWO_SELECTIONS, earlier)
        assert not refused.allow
        assert refused.rule == "iwlz-bemiddelingspecificatie/venster-contactgegevens"
        assert (
            refused.reason is not None and "contactgegevens needs its date window" in refused.reason
        )


def test_a_selection_decided_once_per_plan_is_decided_again_for_another_selection() -> None:
    route = Route()
    query, variables = qbr_0002()
    forbidden = query.replace(
        "soortToewijzing\n    bemiddeling {",
        "soortToewijzing\n    pgbPercentage\n    bemiddeling {",
        1,
    )
    assert forbidden != query
    for _ in range(3):
        assert route.decide(query, variables).allow
        refused = route.decide(forbidden, variables)
        assert refused.rule == "iwlz-bemiddelingspecificatie/geen-pgbPercentage"
        assert refused.reason == "pgbPercentage is never readable by a zorgaanbieder (POL103)"


def test_a_selection_that_varies_with_a_variable_is_decided_per_request() -> None:
    route = Route()
    query, variables = qbr_0002()
    optional = query.replace(
        "query Bemiddelingspecificatie(", "query Bemiddelingspecificatie(\n  $pgb: Boolean!", 1
    ).replace(
        "soortToewijzing\n    bemiddeling {",
        "soortToewijzing\n    pgbPercentage @include(if: $pgb)\n    bemiddeling {",
        1,
    )
    for _ in range(3):
        assert route.decide(optional, {**variables, "pgb": False}).allow
        refused = route.decide(optional, {**variables, "pgb": True})
        assert refused.rule == "iwlz-bemiddelingspecificatie/geen-pgbPercentage"


def test_an_equal_filter_under_another_requests_window_is_decided_again() -> None:
    # The nested filter is a literal (equal in every request); only the root dates move
    # the window's first day past it. A verdict kept beyond its request would allow.
    literal = TWO_SELECTIONS.replace("$ander: Date!", "").replace("$ander", '"2025-01-01"')
    route = Route()
    inside = {**VARIABLES}
    later = {**VARIABLES, "van": "2025-02-01", "moment": "2025-03-01T10:00:00.000+01:00"}
    for _ in range(3):
        allowed = route.decide(literal, inside)
        assert allowed.allow, allowed.message
        refused = route.decide(literal, later)
        assert refused.rule == "iwlz-bemiddelingspecificatie/venster-contactgegevens"


def test_a_closed_windows_last_day_is_the_requests_own_even_on_a_leap_day() -> None:
    # The contacts' window closes two years after the root toewijzingEinddatum (29 February
    # -> 28 February in a common year). The last day is remembered per date (a pure
    # function of it): requests of one plan with other end dates get their own last day.
    query = TWO_SELECTIONS.replace("{ngt: $tot}", "{ngt: $grens}").replace(
        "$ander: Date!", "$ander: Date!, $grens: Date!"
    )
    assert query.count("$grens") == 3
    route = Route()
    leap = {
        **VARIABLES,
        "van": "2024-01-01",
        "moment": "2023-12-15T10:00:00.000+01:00",
        "ander": "2024-01-01",
        "tot": "2024-02-29",
    }
    later = {**leap, "tot": "2024-03-01"}
    for _ in range(3):
        inside = route.decide(query, {**leap, "grens": "2026-02-28"})
        assert inside.allow, inside.message
        refused = route.decide(query, {**leap, "grens": "2026-03-01"})
        assert refused.rule == "iwlz-bemiddelingspecificatie/venster-contactgegevens"
        assert (
            refused.reason is not None and "contactgegevens needs its date window" in refused.reason
        )
        allowed = route.decide(query, {**later, "grens": "2026-03-01"})
        assert allowed.allow, allowed.message
