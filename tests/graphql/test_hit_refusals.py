"""Refusals on a parse-cache hit, through the real gateway over HTTP.

A repeated query text takes the plan's written facts function
(``gateway/graphql/written.py``) and a repeated body prefix the JSON reader by parts
(``parse_graphql_fields``): what either finds invalid is refused with the general path's
status and message, as on a miss, and the upstream sees nothing of it.
"""

from __future__ import annotations

import json
from typing import Any

from tests.fixtures.gateway import NOTIFICATIE_5151, ZK_5151, Gateway, seed_notification

_JSON = {"Content-Type": "application/json"}


async def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    [error] = json.loads(await response.read())["errors"]
    return dict(error)


async def test_a_bad_variable_on_a_hit_is_refused_as_on_a_miss(gateway: Gateway) -> None:
    token = gateway.token("ciz", [NOTIFICATIE_5151])
    bad = seed_notification(afzenderID=62253778)  # an Int where a String is declared
    first = await _error(await gateway.post(ZK_5151, bad, token=token), 400)
    assert (await gateway.post(ZK_5151, token=token)).status == 200  # the text is cached
    again = await _error(await gateway.post(ZK_5151, bad, token=token), 400)
    assert again["message"] == first["message"] and "afzenderID" in first["message"]
    assert again["extensions"]["code"] == first["extensions"]["code"]
    assert len(gateway.upstream.received) == 1  # the valid one only


async def test_a_duplicate_after_a_remembered_prefix_is_refused(gateway: Gateway) -> None:
    token = gateway.token("ciz", [NOTIFICATIE_5151])
    body = json.dumps(seed_notification()).encode()
    assert (await gateway.post(ZK_5151, token=token, data=body, headers=_JSON)).status == 200
    at = body.index(b'"variables"')
    twice = body[:at] + b'"variables": {"afzenderID": "1", "afzenderID": "2"}}'
    error = await _error(await gateway.post(ZK_5151, token=token, data=twice, headers=_JSON), 400)
    assert error["message"] == (
        "Duplicate member `afzenderID` in the request body: each name may occur once per object"
    )
    assert len(gateway.upstream.received) == 1
