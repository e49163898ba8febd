"""Secrets never reach a log line: the redaction processor, stdlib logs, the access log."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from pytest_aiohttp import AiohttpServer

from gateway.config.model import GatewayConfig
from gateway.observability.http import GatewayAccessLogger
from gateway.observability.redact import (
    _PATTERN,
    REDACTED,
    may_hold_secret,
    redact_text,
    redact_value,
)
from tests.fixtures.observability import JWT, json_lines, observability_app


@pytest.mark.parametrize(
    "text",
    [
        JWT,
        f"Bearer {JWT}",
        "Authorization: Bearer opaque-token-value-123",
        "Basic Y2l6OmNpei1kZW1vLXNlY3JldA==",
        "grant_type=client_credentials&client_secret=ciz-demo-secret&scope=x",
        '{"client_secret": "ciz-demo-secret"}',
        f"client_assertion={JWT}&client_assertion_type=x",
        f"Syntax Error: Unexpected Name '{JWT}'.",
        "password=hunter2",
    ],
)
def test_redact_text_removes_the_secret(text: str) -> None:
    redacted = redact_text(text)
    for secret in (
        "ciz-demo-secret",
        "Y2l6OmNpei1kZW1vLXNlY3JldA",
        "opaque-token-value-123",
        "hunter2",
        "eyJzdWIi",
        "MEUCIQDx",
    ):
        assert secret not in redacted
    assert REDACTED in redacted


def test_harmless_text_is_left_alone() -> None:
    for text in (
        "UZOVI:5151",
        "zendNotificatie mutation: afzender_id is not valid",
        "/deelnemers/uzovi/5151/graphql",
        "invalid token: expired",
    ):
        assert redact_text(text) == text


def test_sensitive_keys_are_redacted_anywhere_in_nested_structures() -> None:
    value = {
        "headers": {"Authorization": "x", "Cookie": "c", "Content-Type": "application/json"},
        "form": [{"client_secret": "s", "client_id": "ciz"}],
        "nested": ({"access_token": "t", "deep": {"password": "p", "ok": 1}},),
        "note": f"got {JWT}",
    }
    assert redact_value(value) == {
        "headers": {
            "Authorization": REDACTED,
            "Cookie": REDACTED,
            "Content-Type": "application/json",
        },
        "form": [{"client_secret": REDACTED, "client_id": "ciz"}],
        "nested": [{"access_token": REDACTED, "deep": {"password": REDACTED, "ok": 1}}],
        "note": f"got {REDACTED}",
    }


def test_structlog_events_and_stdlib_records_are_redacted(
    write_config: Callable[..., GatewayConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    observability_app(write_config())
    capsys.readouterr()
    structlog.get_logger("t").info("x", token=JWT, headers={"authorization": f"Bearer {JWT}"})
    logging.getLogger("aiohttp.server").error("bad header %s", f"Bearer {JWT}")
    try:
        raise ValueError(f"cannot use client_secret=ciz-demo-secret with {JWT}")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    out = capsys.readouterr().out
    lines = json_lines(out)
    assert len(lines) == 3
    assert lines[2]["logger"] == "aiohttp.server"
    assert "ValueError" in lines[2]["exception"]
    assert "eyJ" not in out and "ciz-demo-secret" not in out


def test_console_format_is_redacted_too(
    write_config: Callable[..., GatewayConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    observability_app(write_config(log_format="console"))
    capsys.readouterr()
    structlog.get_logger("t").info("x", client_secret="ciz-demo-secret", note=JWT)
    out = capsys.readouterr().out
    assert "ciz-demo-secret" not in out and "eyJ" not in out
    assert "[REDACTED]" in out
    observability_app(write_config(log_format="json"))  # back to JSON for later tests


async def test_access_log_never_prints_credentials_or_query_string(
    aiohttp_server: AiohttpServer,
    write_config: Callable[..., GatewayConfig],
    capsys: pytest.CaptureFixture[str],
) -> None:
    import aiohttp

    server = await aiohttp_server(
        observability_app(write_config()), access_log_class=GatewayAccessLogger
    )
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            server.make_url(f"/healthz?access_token={JWT}"),
            headers={
                "Authorization": f"Bearer {JWT}",
                "Cookie": "session=abc",
                "User-Agent": "probe/1",
                "X-Request-Id": "req-7",
            },
        ) as response,
    ):
        assert response.status == 200
    out = capsys.readouterr().out
    (line,) = [x for x in json_lines(out) if x.get("event") == "access"]
    assert line["path"] == "/healthz"
    assert line["route"] == "/healthz"
    assert line["status"] == 200
    assert line["user_agent"] == "probe/1"
    assert line["request_id"] == "req-7"
    assert "eyJ" not in out and "session=abc" not in out


async def test_default_aiohttp_access_log_is_redacted_when_no_logger_class_is_given(
    aiohttp_server: AiohttpServer,
    write_config: Callable[..., GatewayConfig],
    capsys: pytest.CaptureFixture[str],
) -> None:
    import aiohttp

    app = observability_app(write_config())
    server = await aiohttp_server(app)
    url = server.make_url(f"/healthz?access_token={JWT}")
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
    out = capsys.readouterr().out
    assert any(x.get("logger") == "aiohttp.access" for x in json_lines(out))
    assert "eyJ" not in out


_FRAGMENTS = st.sampled_from(
    [
        "eyJ",
        "eyJhbGciOiJub25lIn0",
        ".",
        "Bearer",
        "bEaReR",
        "basic",
        "DPoP",
        "token",
        "secret",
        "password",
        "client_secret",
        "=",
        '"',
        "'",
        ":",
        " ",
        "\t",
        "\u2003",
        "\x1c",
        "\xa0",
        "x",
        "abc123",
        "-",
        "_",
    ]
)


@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=4)), max_size=12).map("".join))
def test_prefilter_never_skips_a_string_the_pattern_matches(text: str) -> None:
    """The cheap pre-test may say yes too often, never no to a string holding a secret."""
    if _PATTERN.search(text) is not None:
        assert may_hold_secret(text)
