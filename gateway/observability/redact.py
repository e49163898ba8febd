"""Redaction of secrets in log events: the last line of defence before a log line is written.

The pipeline never logs a token or secret on purpose; this processor makes sure an accident
(an exception message quoting a header, a GraphQL error echoing a JWT) cannot leak one either.
It runs on every structlog event and on every stdlib ``logging`` record (aiohttp's own logs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from structlog.typing import EventDict

REDACTED = "[REDACTED]"

SENSITIVE_KEYS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "client_assertion",
        "assertion",
        "password",
        "passwd",
        "secret",
        "cookie",
        "set_cookie",
        "api_key",
        "apikey",
        "private_key",
        "x_api_key",
    }
)
"""Key names (lower-cased, ``-`` read as ``_``) whose value is always replaced."""

_SENSITIVE_SUFFIXES = ("_token", "_secret", "password", "_assertion", "_private_key")

# A JWT/JWS/JWE compact serialisation: a base64url JSON header ("eyJ" = '{"') and two or more
# further segments; the signature may be empty (alg none), so the last segment is optional.
_JWT = r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]*"
# An HTTP credential in text: "Bearer <token>", "Basic <b64>".
_AUTH_SCHEME = r"(?i:\b(?:bearer|basic|dpop)\s+)[A-Za-z0-9._~+/=-]+"
# key=value pairs in form bodies, query strings and exception messages, and "key": "value"
# in JSON text (a bare "token: expired" in prose is left alone).
_PAIR = (
    r"(?i:\b(?P<k>access_token|refresh_token|id_token|client_secret|client_assertion|"
    r"password|token|secret|authorization)\b(?:\s*=\s*|[\"']\s*:\s*))"
    r"(?P<q>[\"']?)[^\s&\"',;}]+"
)
_PATTERN = re.compile(f"(?P<pair>{_PAIR})|(?P<jwt>{_JWT})|(?P<auth>{_AUTH_SCHEME})")

# A cheap test every string the pattern can match passes: a JWT contains "eyJ", a pair "="
# or a quote before ":" (or whitespace), a credential scheme whitespace after its name. The
# (vast majority of) harmless strings skip the regex; substring tests run at memchr speed.
_SPACE = re.compile(r"\s")


def may_hold_secret(text: str) -> bool:
    """False only when :data:`_PATTERN` cannot match *text* (so it needs no redaction)."""
    if "eyJ" in text or "=" in text or '":' in text or "':" in text:
        return True
    if text.isascii():  # O(1): CPython records it; then only the ASCII whitespace of \s
        return (
            " " in text
            or "\t" in text
            or "\n" in text
            or "\r" in text
            or "\x0b" in text
            or "\x0c" in text
            or "\x1c" in text
            or "\x1d" in text
            or "\x1e" in text
            or "\x1f" in text
        )
    return _SPACE.search(text) is not None


# structlog's ProcessorFormatter bookkeeping (the LogRecord itself); removed before rendering.
_META_KEYS = frozenset({"_record", "_from_structlog"})


def _replace(match: re.Match[str]) -> str:
    if match.group("pair"):
        text = match.group(0)
        # Keep the key (useful for debugging which parameter leaked), drop the value.
        head_len = match.end("q") - match.start()
        return text[:head_len] + REDACTED
    if match.group("auth"):
        scheme = match.group(0).split(None, 1)[0]
        return f"{scheme} {REDACTED}"
    return REDACTED


def redact_text(text: str) -> str:
    """Replace every JWT, ``Bearer``/``Basic`` credential and ``secret=value`` pair in *text*."""
    if may_hold_secret(text):
        return _PATTERN.sub(_replace, text)
    return text


def is_sensitive_key(key: str) -> bool:
    """True when a field named *key* holds a credential by its name alone."""
    norm = key.lower().replace("-", "_")
    return norm in SENSITIVE_KEYS or norm.endswith(_SENSITIVE_SUFFIXES) or norm.startswith("secret")


def redact_value(value: Any) -> Any:
    """Return *value* with secrets removed, walking nested mappings, lists and tuples."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_sensitive_key(k) else redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return redact_text(bytes(value).decode("utf-8", "replace"))
    # Anything else is rendered with str() by the JSON renderer: redact that text now.
    return redact_text(str(value))


_KEY_CACHE: dict[str, bool] = {}
"""Verdicts of :func:`is_sensitive_key` for the (few, code-defined) keys seen so far."""


def _sensitive_cached(key: str) -> bool:
    verdict = _KEY_CACHE.get(key)
    if verdict is None:
        verdict = is_sensitive_key(key)
        if len(_KEY_CACHE) < 4096:
            _KEY_CACHE[key] = verdict
    return verdict


_SCALARS = (type(None), bool, int, float)

_KEYSET_CACHE: dict[tuple[str, ...], tuple[str, ...]] = {}
"""Per set of event keys (a decision event always has the same ones): the sensitive keys."""


def sensitive_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """Which of *keys* are named like a secret (cached per key set)."""
    found = _KEYSET_CACHE.get(keys)
    if found is None:
        found = tuple(k for k in keys if _sensitive_cached(k) and k not in _META_KEYS)
        if len(_KEYSET_CACHE) < 1024:
            _KEYSET_CACHE[keys] = found
    return found


def redact_event(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: redact every key and value of the event in place."""
    # On every log line, so the common case is cheap: the sensitive keys come from a cache
    # per key set, and all string values are checked with ONE regex search over their
    # concatenation; only an event that trips it takes the per-value path.
    for key in sensitive_keys(tuple(event_dict)):
        event_dict[key] = REDACTED
    texts: list[str] = []
    nested = False
    for key, value in event_dict.items():
        kind = type(value)
        if kind is str:
            texts.append(value)
        elif kind not in _SCALARS and key not in _META_KEYS and value is not REDACTED:
            nested = True
    if texts and may_hold_secret("\x00".join(texts)):
        for key, value in event_dict.items():
            if type(value) is str and value is not REDACTED and may_hold_secret(value):
                event_dict[key] = _PATTERN.sub(_replace, value)
    if nested:
        for key, value in event_dict.items():
            if type(value) not in _SCALARS and type(value) is not str and key not in _META_KEYS:
                event_dict[key] = redact_value(value)
    return event_dict
