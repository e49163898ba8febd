"""The default claim mapping (``nid_claims.yaml``) and building a ClaimMapping from data."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from gateway.config.model import ClaimMapping, IdentifierClaim

DEFAULT_CLAIMS_FILE = Path(__file__).with_name("nid_claims.yaml")


def claim_mapping_from_data(data: Mapping[str, Any]) -> ClaimMapping:
    """Build a ClaimMapping from already-validated YAML data (keys as in ``nid_claims.yaml``)."""
    base = ClaimMapping()
    return ClaimMapping(
        instantie_type=tuple(data.get("instantie_type", base.instantie_type)),
        identifiers=tuple(
            IdentifierClaim(claim=str(i["claim"]), id_type=str(i["id_type"]))
            for i in data.get("identifiers", ())
        ),
        scopes=tuple(data.get("scopes", base.scopes)),
        client_id=tuple(data.get("client_id", base.client_id)),
        actor=str(data.get("actor", base.actor)),
        aggregated_claims=bool(data.get("aggregated_claims", base.aggregated_claims)),
    )


@cache
def default_claim_mapping() -> ClaimMapping:
    """The nID claim mapping shipped with the gateway."""
    with DEFAULT_CLAIMS_FILE.open(encoding="utf-8") as fh:
        return claim_mapping_from_data(yaml.safe_load(fh))
