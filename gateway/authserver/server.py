"""The token endpoint: authlib's framework-agnostic OAuth2 core behind a small aiohttp adapter.

authlib does the protocol: grant dispatch (client_credentials only), client
authentication (RFC 7523 ``private_key_jwt``; ``client_secret_basic``/``_post`` and
``tls_client_auth`` are ours, plugged into authlib's registry) and RFC 6749 §5.2 error
bodies. The adapter reads the aiohttp request (form or JSON body) into an
:class:`OAuth2Request`, refuses clients blocked after repeated failed authentications
(:mod:`gateway.authserver.bruteforce`), and turns authlib's ``(status, body, headers)``
back into an aiohttp response.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web
from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidRequestError,
    OAuth2Error,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt as jose_jwt

from gateway.authserver.bruteforce import Blocked, FailureLimiter
from gateway.authserver.clients import RegisteredClient, ReplayCache
from gateway.authserver.credentials import MalformedCredentials, basic_credentials, check_secret
from gateway.authserver.signing_keys import KeyStore
from gateway.authserver.tokens import (
    IssuedToken,
    TokenIssuer,
    TokenRequestError,
    requested_audience,
)
from gateway.config.model import GatewayConfig
from gateway.config.subjects import certificate_subject
from gateway.observability.events import Observer, TokenEvent
from gateway.refusals import content_coding

TOKEN_PATH = "/auth/token"
JWKS_PATH = "/.well-known/jwks.json"
METADATA_PATH = "/.well-known/oauth-authorization-server"
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth"]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_TOKEN_REQUEST_BYTES = 64 * 1024
"""A token request is a handful of short parameters (an assertion is ~1 KB)."""

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
BAD_ASSERTION = "invalid client assertion"


class TokenRequest(OAuth2Request):  # type: ignore[misc]
    """An :class:`OAuth2Request` built from an already-read aiohttp request."""

    def __init__(
        self,
        uri: str,
        headers: Mapping[str, str],
        form: dict[str, str],
        ssl_object: ssl.SSLObject | None,
        basic: tuple[str, str] | None = None,
    ) -> None:
        super().__init__("POST", uri, headers=headers)
        self._form = form
        self.payload = BasicOAuth2Payload(form)
        self._ssl_object = ssl_object
        self.basic = basic
        """``(client_id, secret)`` of the Basic header, read once by :func:`basic_credentials`."""
        self.issued: IssuedToken | None = None

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}

    def peer_subject(self) -> str | None:
        """Subject DN of the verified client certificate of this TLS connection, if any."""
        if self._ssl_object is None:
            return None
        der = self._ssl_object.getpeercert(binary_form=True)
        return certificate_subject(der) if der else None


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    """RFC 7523 client assertion: signed with a key of the client's registered JWKS."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, audiences: list[str], max_lifetime: int, replay: ReplayCache) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self._audiences = audiences
        self._max_lifetime = max_lifetime
        self._replay = replay

    def get_audiences(self) -> list[str]:
        """The token endpoint URL or the issuer."""
        return self._audiences

    def resolve_client_public_key(self, client: RegisteredClient) -> Any:
        """The client's JWKS, imported at load time."""
        if client.keyset is None:
            # Said like any other bad assertion: the answer must not tell that the client exists.
            raise InvalidClientError(description=BAD_ASSERTION)
        return client.keyset

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        # Only asymmetric algorithms: a JWKS holds public keys, and "none"/HMAC must never pass.
        try:
            token = jose_jwt.decode(
                assertion, resolve_key, algorithms=["RS256", "PS256", "ES256", "EdDSA"]
            )
        except Exception as exc:  # joserfc raises several unrelated types for bad input
            raise InvalidClientError(description=BAD_ASSERTION) from exc
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: Any) -> None:
        super().verify_claims(claims)
        exp = claims.get("exp")
        now = time.time()
        if not isinstance(exp, int | float) or exp - now > self._max_lifetime:
            raise InvalidClientError(
                description=f"assertion lifetime exceeds {self._max_lifetime} seconds"
            )

    def validate_jti(self, claims: Mapping[str, Any], jti: Any) -> bool:
        if not isinstance(jti, str) or not jti:
            return False
        return self._replay.add(str(claims["sub"]), jti, float(claims["exp"])) is None


class ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    """client_credentials with nID's checks: audience, scopes, actor (RFC0014)."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_token_request(self) -> None:
        super().validate_token_request()
        server: GatewayAuthorizationServer = self.server
        request: TokenRequest = self.request
        client: RegisteredClient = request.client
        data = request.payload.data
        try:
            request.issued = server.issuer.issue(
                client.config,
                (data.get("scope") or "").split(),
                requested_audience(data.get("audience"), data.get("resource")),
                data.get("actor") or None,
            )
        except TokenRequestError as exc:
            raise OAuth2Error(
                error=exc.error, description=exc.description, status_code=exc.status
            ) from None

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """The RFC 6749 §5.1 response for the token minted in validate_token_request."""
        issued: IssuedToken | None = self.request.issued
        assert issued is not None
        body = {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }
        return 200, body, list(self.TOKEN_RESPONSE_HEADER)


class GatewayAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """authlib's AuthorizationServer wired to our clients, issuer and key store."""

    def __init__(self, config: GatewayConfig, keystore: KeyStore) -> None:
        super().__init__()
        auth = config.authserver
        assert auth is not None
        self.issuer = TokenIssuer(config, keystore)
        self.clients = {c.client_id: RegisteredClient(c) for c in auth.clients}
        self.subjects = {
            c.tls_subject: self.clients[c.client_id] for c in auth.clients if c.tls_subject
        }
        self.token_endpoint = config.public_url + TOKEN_PATH
        self.replay = ReplayCache()
        audiences = list(dict.fromkeys([self.token_endpoint, config.issuer]))
        self.register_grant(ClientCredentials)
        # Our own secret methods replace authlib's: the Basic header is read strictly (never
        # an exception) and an unknown client_id fails exactly like a wrong secret.
        self.register_client_auth_method("client_secret_basic", self._client_secret_basic)
        self.register_client_auth_method("client_secret_post", self._client_secret_post)
        assertion = PrivateKeyJWT(audiences, auth.assertion_max_lifetime, self.replay)
        self.register_client_auth_method(
            "private_key_jwt", lambda _query, request: assertion(self._assertion_client, request)
        )
        self.register_client_auth_method("tls_client_auth", self._tls_client_auth)

    def query_client(self, client_id: str) -> RegisteredClient | None:
        """The registered client (a dict lookup)."""
        return self.clients.get(client_id)

    def _assertion_client(self, client_id: str) -> RegisteredClient:
        """The client an assertion names; an unknown one is just a bad assertion."""
        client = self.clients.get(client_id)
        if client is None:
            raise InvalidClientError(description=BAD_ASSERTION)
        return client

    def _client_secret_basic(self, _query: Any, request: TokenRequest) -> RegisteredClient | None:
        if request.basic is None:
            return None
        return check_secret(self.clients, *request.basic)

    def _client_secret_post(self, _query: Any, request: TokenRequest) -> RegisteredClient | None:
        client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
        if not client_id or not secret:
            return None
        return check_secret(self.clients, client_id, secret)

    def _tls_client_auth(self, query_client: Any, request: TokenRequest) -> RegisteredClient | None:
        """RFC 8705 §2.1.2 (PKI): the verified certificate's subject names the client."""
        subject = request.peer_subject()
        if subject is None:
            return None
        client = self.subjects.get(subject)
        if client is None:
            raise InvalidClientError(
                description="certificate subject is not registered", status_code=401
            )
        claimed = request.form.get("client_id")
        if claimed is not None and claimed != client.config.client_id:
            raise InvalidClientError(
                description="client_id does not match the certificate", status_code=401
            )
        return client

    def save_token(self, token: dict[str, Any], request: TokenRequest) -> None:
        """Tokens are self-contained JWTs: nothing to store."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal system."""

    def create_oauth2_request(self, request: TokenRequest) -> TokenRequest:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, headers


def _response(
    status: int, body: Mapping[str, Any], extra: Mapping[str, str] | None = None
) -> web.Response:
    headers = dict(NO_STORE)
    if extra:
        headers.update(extra)
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def _error(error: str, description: str, status: int = 400) -> web.Response:
    extra = None
    if error == "invalid_client":
        status = 401
        extra = {"WWW-Authenticate": 'Basic realm="nid-gateway", error="invalid_client"'}
    return _response(status, {"error": error, "error_description": description}, extra)


def _too_many_failures(blocked: Blocked) -> tuple[web.Response, str]:
    """``429`` with ``Retry-After`` (RFC 6585): the same for a known or an unknown client_id."""
    description = "too many failed client authentications, retry later"
    body = {"error": "temporarily_unavailable", "error_description": description}
    return _response(429, body, {"Retry-After": str(blocked.retry_after)}), description


class RequestBodyError(Exception):
    """The token request body cannot be read (always ``invalid_request``)."""


def _encodable(text: str) -> str:
    """*text*, unless it holds a lone surrogate (JSON ``"\\udcff"``), which no log line or
    response could carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestBodyError("request body is not valid UTF-8") from None
    return text


def unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A dict of *pairs*: the form parameters, or the members of a JSON object at any depth
    (``object_pairs_hook``). A name given twice is refused: one mechanism for both bodies."""
    members: dict[str, Any] = {}
    for name, value in pairs:
        if _encodable(name) in members:
            raise RequestBodyError(f"parameter {name} given more than once")
        members[name] = _encodable(value) if isinstance(value, str) else value
    return members


def _no_constant(name: str) -> Any:
    raise RequestBodyError(f"{name} is not valid JSON")


async def read_parameters(request: web.Request) -> dict[str, str]:
    """Token request parameters from a form or JSON body; each parameter at most once."""
    if request.content_length is not None and request.content_length > MAX_TOKEN_REQUEST_BYTES:
        raise RequestBodyError("request body too large")
    # Refused before a byte is read: a corrupt compressed body never reaches a decoder.
    coding = content_coding(request.headers.getall("Content-Encoding", ()))
    if coding is not None:
        raise RequestBodyError(f"Content-Encoding {coding!r} is not accepted")
    chunks: list[bytes] = []
    size = 0
    # The whole body, however many segments it arrives in (read(n) returns the first only).
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > MAX_TOKEN_REQUEST_BYTES:
            raise RequestBodyError("request body too large")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestBodyError("request body is not UTF-8") from None
    ctype = request.content_type
    params: dict[str, str] = {}
    if ctype == "application/x-www-form-urlencoded":
        params = unique_members(parse_qsl(text, keep_blank_values=True))
    elif ctype == "application/json":
        try:
            # The standard library's parser for its object_pairs_hook: orjson keeps the last
            # of two equal member names, which would let a request mean two things.
            data = json.loads(text, object_pairs_hook=unique_members, parse_constant=_no_constant)
        except json.JSONDecodeError:
            raise RequestBodyError("request body is not valid JSON") from None
        except RecursionError:
            raise RequestBodyError("request body is nested too deeply") from None
        if not isinstance(data, dict):
            raise RequestBodyError("JSON body must be an object")
        for name, value in data.items():
            if (
                isinstance(value, list)
                and name == "scope"
                and all(isinstance(v, str) for v in value)
            ):
                value = _encodable(" ".join(value))  # tolerate a JSON array of scopes
            if not isinstance(value, str):
                raise RequestBodyError(f"parameter {name} must be a string")
            params[name] = value
    else:
        raise RequestBodyError(
            "Content-Type must be application/x-www-form-urlencoded or application/json"
        )
    return params


def _methods_used(basic: tuple[str, str] | None, params: Mapping[str, str]) -> list[str]:
    used = []
    if basic is not None:
        used.append("client_secret_basic")
    if "client_secret" in params:
        used.append("client_secret_post")
    if "client_assertion" in params or "client_assertion_type" in params:
        used.append("private_key_jwt")
    return used


def _claimed_client(basic: tuple[str, str] | None, params: Mapping[str, str]) -> str | None:
    """Who the caller says it is (for the event log and the failure count; never trusted)."""
    if basic is not None:
        return basic[0]
    if params.get("client_id"):
        return params["client_id"]
    assertion = params.get("client_assertion")
    if assertion and assertion.count(".") == 2:
        import base64

        part = assertion.split(".")[1]
        try:
            payload = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if isinstance(payload, dict) and isinstance(payload.get("sub"), str):
            return str(payload["sub"])
    return None


class TokenEndpoint:
    """``POST /auth/token``: reads the request, runs authlib, reports a TokenEvent."""

    def __init__(self, config: GatewayConfig, keystore: KeyStore, observer: Observer) -> None:
        auth = config.authserver
        assert auth is not None
        self.server = GatewayAuthorizationServer(config, keystore)
        self.observer = observer
        self.uri = self.server.token_endpoint
        self.failures = FailureLimiter(auth.brute_force)

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one token request (never a 500 for bad input)."""
        started = time.perf_counter()
        params: dict[str, str] = {}
        address = request.remote or "unknown"
        response, event = await self._handle(request, params, address)
        if event.outcome == "invalid_client":
            await self.failures.failed(event.client_id, address)
        event.duration_ms = (time.perf_counter() - started) * 1000
        event.scopes = tuple((params.get("scope") or "").split())
        event.audience = params.get("audience") or params.get("resource")
        event.actor = params.get("actor")
        self.observer.token(event)
        return response

    async def _handle(
        self, request: web.Request, params: dict[str, str], address: str
    ) -> tuple[web.Response, TokenEvent]:
        try:
            params.update(await read_parameters(request))
        except RequestBodyError as exc:
            return _error("invalid_request", str(exc)), TokenEvent(
                outcome="invalid_request", client_id=None, error_description=str(exc)
            )
        malformed: str | None = None
        try:
            basic = basic_credentials(request.headers)
        except MalformedCredentials as exc:
            basic, malformed = None, str(exc)
        claimed = _claimed_client(basic, params)
        blocked = await self.failures.blocked(claimed, address)
        if blocked is not None:
            response, message = _too_many_failures(blocked)
            return response, TokenEvent(
                outcome="temporarily_unavailable",
                client_id=claimed,
                error_description=message,
                blocked_by=blocked.limit,
            )
        if malformed is not None:
            return _error("invalid_client", malformed), TokenEvent(
                outcome="invalid_client", client_id=claimed, error_description=malformed
            )
        used = _methods_used(basic, params)
        if len(used) > 1:
            message = "use one client authentication method per request"
            return _error("invalid_request", message), TokenEvent(
                outcome="invalid_request", client_id=claimed, error_description=message
            )
        if not params.get("grant_type"):
            message = "grant_type required"
            return _error("invalid_request", message), TokenEvent(
                outcome="invalid_request", client_id=claimed, error_description=message
            )
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        oauth_request = TokenRequest(self.uri, request.headers, params, ssl_object, basic)
        try:
            status, body, _headers = self.server.create_token_response(oauth_request)
        except (InvalidRequestError, ValueError) as exc:  # defensive: never a 500
            return _error("invalid_request", "malformed token request"), TokenEvent(
                outcome="invalid_request", client_id=claimed, error_description=str(exc)
            )
        client = oauth_request.client
        client_id = client.config.client_id if isinstance(client, RegisteredClient) else claimed
        issued = oauth_request.issued
        if status == 200 and issued is not None:
            return _response(200, body), TokenEvent(
                outcome="issued",
                client_id=client_id,
                auth_method=oauth_request.auth_method,
                jti=issued.jti,
            )
        error = str(body.get("error", "invalid_request"))
        description = str(body.get("error_description", ""))
        if error == "invalid_client" and description.startswith("The client cannot authenticate"):
            description = "client authentication failed"  # do not list what was tried
        elif error == "unsupported_grant_type":
            description = "only grant_type=client_credentials is supported"
        return _error(error, description, status), TokenEvent(
            outcome=error,
            client_id=client_id,
            auth_method=oauth_request.auth_method,
            error_description=description,
        )
