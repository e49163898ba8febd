"""POST /auth/token with client secrets: issued tokens, their claims, and every error."""

from __future__ import annotations

import base64
from typing import Any

import jwt

from gateway.authserver.tokens import issue_token
from gateway.config.model import GatewayConfig
from tests.fixtures.authserver import (
    AUDIENCE,
    MELDING_SCOPE,
    OTHER_AUDIENCE,
    SCOPE,
    SECRET,
    AuthClient,
    RecordingObserver,
)


def basic(client_id: str = "ciz", secret: str = SECRET) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


GRANT = {"grant_type": "client_credentials", "scope": SCOPE, "audience": AUDIENCE}


async def post(
    auth_client: AuthClient, data: Any = None, **kwargs: Any
) -> tuple[int, dict[str, Any], Any]:
    client, _ = auth_client
    resp = await client.post("/auth/token", data=data, **kwargs)
    return resp.status, await resp.json(), resp.headers


async def test_client_secret_basic_issues_a_bearer_token(auth_client: AuthClient) -> None:
    status, body, headers = await post(auth_client, GRANT, headers=basic())
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == SCOPE
    assert headers["Cache-Control"] == "no-store"


async def test_token_carries_exactly_the_contract_claims(auth_client: AuthClient) -> None:
    _, body, _ = await post(auth_client, GRANT, headers=basic())
    _, keystore = auth_client
    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256"
    key = keystore.verification_key(header["kid"])
    assert key is not None
    claims = jwt.decode(token, key, algorithms=["ES256"], audience=AUDIENCE)
    assert set(claims) == {
        "iss",
        "sub",
        "aud",
        "exp",
        "nbf",
        "iat",
        "jti",
        "client_id",
        "scope",
        "scopes",
        "instantie_type",
        "kvk",
    }
    assert claims["iss"] == "http://127.0.0.1:8080"
    assert claims["sub"] == claims["client_id"] == "ciz"
    assert claims["aud"] == AUDIENCE
    assert claims["scope"] == SCOPE and claims["scopes"] == [SCOPE]
    assert claims["instantie_type"] == "Onderneming" and claims["kvk"] == "62253778"
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]


async def test_each_token_has_a_fresh_jti(auth_client: AuthClient) -> None:
    first = (await post(auth_client, GRANT, headers=basic()))[1]["access_token"]
    second = (await post(auth_client, GRANT, headers=basic()))[1]["access_token"]
    jtis = {jwt.decode(t, options={"verify_signature": False})["jti"] for t in (first, second)}
    assert len(jtis) == 2


async def test_client_secret_post_in_a_form_body(auth_client: AuthClient) -> None:
    status, body, _ = await post(
        auth_client, {**GRANT, "client_id": "ciz", "client_secret": SECRET}
    )
    assert status == 200 and body["access_token"]


async def test_client_secret_post_in_a_json_body(auth_client: AuthClient) -> None:
    client, _ = auth_client
    resp = await client.post(
        "/auth/token", json={**GRANT, "client_id": "ciz", "client_secret": SECRET}
    )
    assert resp.status == 200


async def test_several_scopes_space_separated(auth_client: AuthClient) -> None:
    status, body, _ = await post(
        auth_client, {**GRANT, "scope": f"{SCOPE} {MELDING_SCOPE}"}, headers=basic()
    )
    assert status == 200
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["scopes"] == [SCOPE, MELDING_SCOPE]


async def test_allowed_actor_becomes_act_sub(auth_client: AuthClient) -> None:
    status, body, _ = await post(auth_client, {**GRANT, "actor": "uzovi:5151"}, headers=basic())
    assert status == 200
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["act"] == {"sub": "uzovi:5151"}


async def test_actor_not_allowed_is_invalid_request(auth_client: AuthClient) -> None:
    status, body, _ = await post(auth_client, {**GRANT, "actor": "uzovi:9999"}, headers=basic())
    assert (status, body["error"]) == (400, "invalid_request")


async def test_missing_audience_is_invalid_request(auth_client: AuthClient) -> None:
    data = {"grant_type": "client_credentials", "scope": SCOPE}
    status, body, headers = await post(auth_client, data, headers=basic())
    assert (status, body["error"], body["error_description"]) == (
        400,
        "invalid_request",
        "audience required",
    )
    assert headers["Cache-Control"] == "no-store"


async def test_audience_not_allowed_is_invalid_target(auth_client: AuthClient) -> None:
    status, body, _ = await post(
        auth_client, {**GRANT, "audience": OTHER_AUDIENCE}, headers=basic()
    )
    assert (status, body["error"]) == (400, "invalid_target")


async def test_rfc8707_resource_names_the_audience(auth_client: AuthClient) -> None:
    data = {"grant_type": "client_credentials", "scope": SCOPE, "resource": AUDIENCE}
    status, body, _ = await post(auth_client, data, headers=basic())
    assert status == 200
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == AUDIENCE


async def test_resource_and_audience_must_name_the_same_target(auth_client: AuthClient) -> None:
    same = await post(auth_client, {**GRANT, "resource": AUDIENCE}, headers=basic())
    assert same[0] == 200
    other = {**GRANT, "resource": OTHER_AUDIENCE}
    status, body, _ = await post(auth_client, other, headers=basic())
    assert (status, body["error"], body["error_description"]) == (
        400,
        "invalid_request",
        "audience and resource name different targets",
    )


async def test_resource_not_an_absolute_uri_is_invalid_target(auth_client: AuthClient) -> None:
    for resource in ("deelnemers/graphql", f"{AUDIENCE}#frag"):
        data = {"grant_type": "client_credentials", "scope": SCOPE, "resource": resource}
        status, body, _ = await post(auth_client, data, headers=basic())
        assert (status, body["error"]) == (400, "invalid_target"), resource


async def test_resource_not_allowed_is_invalid_target(auth_client: AuthClient) -> None:
    data = {"grant_type": "client_credentials", "scope": SCOPE, "resource": OTHER_AUDIENCE}
    status, body, _ = await post(auth_client, data, headers=basic())
    assert (status, body["error"]) == (400, "invalid_target")


async def test_two_resources_are_refused(auth_client: AuthClient) -> None:
    client, _ = auth_client
    body = f"grant_type=client_credentials&scope={SCOPE}&resource={AUDIENCE}&resource={AUDIENCE}"
    resp = await client.post(
        "/auth/token",
        data=body,
        headers={**basic(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (resp.status, (await resp.json())["error"]) == (400, "invalid_request")


async def test_scope_not_allowed_is_invalid_scope(auth_client: AuthClient) -> None:
    data = {**GRANT, "scope": f"{SCOPE} organisaties/zorgaanbieder/notificaties/notificatie:create"}
    status, body, _ = await post(auth_client, data, headers=basic())
    assert (status, body["error"], body["error_description"]) == (
        400,
        "invalid_scope",
        "scope not allowed",
    )


async def test_missing_scope_is_invalid_scope(auth_client: AuthClient) -> None:
    data = {"grant_type": "client_credentials", "audience": AUDIENCE}
    status, body, _ = await post(auth_client, data, headers=basic())
    assert (status, body["error"]) == (400, "invalid_scope")


async def test_wrong_secret_is_invalid_client_401(auth_client: AuthClient) -> None:
    status, body, headers = await post(auth_client, GRANT, headers=basic(secret="wrong"))
    assert (status, body["error"]) == (401, "invalid_client")
    assert headers["WWW-Authenticate"].startswith("Basic")


async def test_unknown_client_is_invalid_client_401(auth_client: AuthClient) -> None:
    status, body, headers = await post(auth_client, GRANT, headers=basic(client_id="nobody"))
    assert (status, body["error"]) == (401, "invalid_client")
    assert "WWW-Authenticate" in headers


async def test_no_client_authentication_is_invalid_client(auth_client: AuthClient) -> None:
    status, body, _ = await post(auth_client, GRANT)
    assert (status, body["error"]) == (401, "invalid_client")


async def test_method_not_registered_for_the_client_is_refused(
    tmp_path: Any, observer: RecordingObserver, aiohttp_client: Any
) -> None:
    from gateway.config.loader import load_config
    from gateway.config.secrets import hash_secret
    from tests.fixtures.authserver import auth_app, write_deployment

    path = write_deployment(
        tmp_path,
        clients=[
            {
                "client_id": "basic-only",
                "auth_method": "client_secret_basic",
                "secret_hash": hash_secret(SECRET),
                "allowed_scopes": [SCOPE],
                "allowed_audiences": [AUDIENCE],
            }
        ],
    )
    app, _ = auth_app(load_config(path), observer)
    client = await aiohttp_client(app)
    resp = await client.post(
        "/auth/token", data={**GRANT, "client_id": "basic-only", "client_secret": SECRET}
    )
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"


async def test_other_grant_type_is_unsupported_grant_type(auth_client: AuthClient) -> None:
    status, body, _ = await post(auth_client, {**GRANT, "grant_type": "password"}, headers=basic())
    assert (status, body["error"]) == (400, "unsupported_grant_type")


async def test_missing_grant_type_is_invalid_request(auth_client: AuthClient) -> None:
    status, body, _ = await post(
        auth_client, {"scope": SCOPE, "audience": AUDIENCE}, headers=basic()
    )
    assert (status, body["error"]) == (400, "invalid_request")


async def test_malformed_json_body_is_invalid_request(auth_client: AuthClient) -> None:
    headers = {**basic(), "Content-Type": "application/json"}
    status, body, _ = await post(auth_client, b"{not json", headers=headers)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_json_body_that_is_not_an_object_is_invalid_request(auth_client: AuthClient) -> None:
    client, _ = auth_client
    resp = await client.post("/auth/token", json=["client_credentials"], headers=basic())
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"


async def test_json_parameter_of_wrong_type_is_invalid_request(auth_client: AuthClient) -> None:
    client, _ = auth_client
    resp = await client.post("/auth/token", json={**GRANT, "audience": 42}, headers=basic())
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_request"


async def test_body_that_is_not_utf8_is_invalid_request(auth_client: AuthClient) -> None:
    headers = {**basic(), "Content-Type": "application/x-www-form-urlencoded"}
    status, body, _ = await post(auth_client, b"grant_type=\xff\xfe", headers=headers)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_other_content_type_is_invalid_request(auth_client: AuthClient) -> None:
    headers = {**basic(), "Content-Type": "text/plain"}
    status, body, _ = await post(auth_client, b"grant_type=client_credentials", headers=headers)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_repeated_parameter_is_invalid_request(auth_client: AuthClient) -> None:
    headers = {**basic(), "Content-Type": "application/x-www-form-urlencoded"}
    body_bytes = (
        f"grant_type=client_credentials&scope={SCOPE}&audience={AUDIENCE}&audience={OTHER_AUDIENCE}"
    )
    status, body, _ = await post(auth_client, body_bytes.encode(), headers=headers)
    assert (status, body["error"]) == (400, "invalid_request")


async def test_two_authentication_methods_at_once_are_refused(auth_client: AuthClient) -> None:
    data = {**GRANT, "client_id": "ciz", "client_secret": SECRET}
    status, body, _ = await post(auth_client, data, headers=basic())
    assert (status, body["error"]) == (400, "invalid_request")


async def test_get_on_token_endpoint_is_405(auth_client: AuthClient) -> None:
    client, _ = auth_client
    assert (await client.get("/auth/token")).status == 405


async def test_every_request_is_reported_without_secret_or_token(
    auth_client: AuthClient, observer: RecordingObserver
) -> None:
    _, body, _ = await post(auth_client, GRANT, headers=basic())
    await post(auth_client, GRANT, headers=basic(secret="wrong"))
    issued, refused = observer.tokens
    assert (issued.outcome, issued.client_id, issued.auth_method) == (
        "issued",
        "ciz",
        "client_secret_basic",
    )
    assert issued.scopes == (SCOPE,) and issued.audience == AUDIENCE and issued.jti
    assert (refused.outcome, refused.client_id) == ("invalid_client", "ciz")
    for event in observer.tokens:
        text = repr(event)
        assert SECRET not in text and "wrong" not in text and body["access_token"] not in text


async def test_issue_token_mints_what_the_endpoint_mints(
    auth_client: AuthClient, config: GatewayConfig
) -> None:
    _, keystore = auth_client
    _, body, _ = await post(auth_client, GRANT, headers=basic())
    offline = issue_token(config, keystore, "ciz", [SCOPE], AUDIENCE)
    online_claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    offline_claims = jwt.decode(offline, options={"verify_signature": False})
    assert jwt.get_unverified_header(offline) == jwt.get_unverified_header(body["access_token"])
    for claims in (online_claims, offline_claims):
        for volatile in ("exp", "nbf", "iat", "jti"):
            claims.pop(volatile)
    assert online_claims == offline_claims
