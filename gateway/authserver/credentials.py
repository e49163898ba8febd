"""Client secrets in a token request: HTTP Basic (RFC 6749 §2.3.1, RFC 7617) and checking them.

authlib's own Basic parser lets a non-ASCII header or base64 of non-UTF-8 bytes escape as an
exception (a 500), so the header is read here, strictly and once. Checking a secret costs
the same whether or not the client exists, so timing does not tell which client_ids are
registered.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Mapping
from urllib.parse import unquote

from gateway.authserver.clients import RegisteredClient, check_unregistered_secret


class MalformedCredentials(Exception):
    """An ``Authorization: Basic`` header that cannot be read (always ``invalid_client``)."""


def basic_credentials(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """``(client_id, secret)`` of the request's Basic header; None when there is none.

    Raises :class:`MalformedCredentials` for a Basic header that is not ASCII, not base64,
    not UTF-8 (after base64 or percent-decoding), or lacks the ``:`` or either part.
    """
    value = headers.get("Authorization")
    if value is None:
        return None
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    encoded = encoded.strip()
    # aiohttp hands non-ASCII header bytes over as surrogate escapes: refuse them here.
    if not encoded.isascii():
        raise MalformedCredentials("Basic credentials are not ASCII")
    try:
        decoded = b64decode(encoded, validate=True)
    except binascii.Error:
        raise MalformedCredentials("Basic credentials are not valid base64") from None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedCredentials("Basic credentials are not UTF-8") from None
    client_id, colon, secret = text.partition(":")
    if not colon:
        raise MalformedCredentials("Basic credentials lack the ':' after the client_id")
    try:
        # RFC 6749 §2.3.1: both parts are form-urlencoded before base64 (as authlib reads them).
        client_id, secret = unquote(client_id, errors="strict"), unquote(secret, errors="strict")
    except UnicodeDecodeError:
        raise MalformedCredentials("Basic credentials are not UTF-8") from None
    if not client_id or not secret:
        raise MalformedCredentials("Basic credentials need a client_id and a secret")
    return client_id, secret


def check_secret(
    clients: Mapping[str, RegisteredClient], client_id: str, secret: str
) -> RegisteredClient | None:
    """The client when *secret* is its secret, else None.

    An unknown client_id costs one hash comparison, like a wrong secret of a known client.
    """
    client = clients.get(client_id)
    if client is None:
        check_unregistered_secret(secret)
        return None
    return client if client.check_client_secret(secret) else None
