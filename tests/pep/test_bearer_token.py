"""The bearer token is read from the ``Authorization`` header alone, its scheme in any case."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.pep.authenticate import authenticate, bearer_token
from gateway.refusals import Unauthenticated


def headers(*values: str, name: str = "Authorization") -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict([(name, v) for v in values]))


@pytest.mark.parametrize(
    "value",
    ["Bearer abc.def.ghi", "bearer abc.def.ghi", "BEARER  abc.def.ghi ", " Bearer abc.def.ghi"],
)
def test_the_scheme_is_matched_in_any_case_and_spaces_around_are_ignored(value: str) -> None:
    assert bearer_token(headers(value)) == "abc.def.ghi"


def test_the_header_name_is_matched_in_any_case() -> None:
    assert bearer_token(headers("Bearer t", name="authorization")) == "t"


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ((), "missing_token"),
        (("Bearer ",), "missing_token"),
        (("Bearer",), "missing_token"),
        (("Basic dXNlcg==",), "wrong_scheme"),
        (("Bearerabc",), "wrong_scheme"),
        (("Bearer a", "Bearer b"), "malformed_header"),
    ],
)
def test_a_missing_or_malformed_header_is_refused(values: tuple[str, ...], reason: str) -> None:
    with pytest.raises(Unauthenticated) as refused:
        bearer_token(headers(*values))
    assert refused.value.reason == reason


class RecordingVerifier:
    """Stands in for the token verifier: remembers the token authenticate hands it."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def verify(self, token: str, *, audience: str, allow_plain_jwt: bool = False) -> str:
        self.tokens.append(token)
        return token


def authenticated(values: tuple[str, ...], name: str = "Authorization") -> str | Unauthenticated:
    """The token authenticate passes on for a header with *values*, or its refusal."""
    verifier = RecordingVerifier()
    try:
        coroutine = authenticate(
            headers(*values, name=name),
            verifier,  # type: ignore[arg-type]
            audience="https://example.test/",
            allow_plain_jwt=False,
        )
    except Unauthenticated as refused:
        return refused
    with pytest.raises(StopIteration) as finished:  # the stand-in never suspends
        coroutine.send(None)
    assert verifier.tokens == [finished.value.value]
    return verifier.tokens[0]


ODD_HEADERS = [
    ("Bearer abc.def.ghi",),
    ("bearer abc.def.ghi",),
    ("BEARER abc.def.ghi",),
    ("Bearer  abc.def.ghi",),
    ("Bearer abc.def.ghi ",),
    (" Bearer abc.def.ghi",),
    ("Bearer\tabc.def.ghi",),
    ("Bearer abc def",),
    ("Bearer a b c",),
    ("Bearer ",),
    ("Bearer",),
    ("Bearer   ",),
    ("Bearerabc",),
    ("Basic dXNlcg==",),
    ("",),
    (),
    ("Bearer a", "Bearer b"),
    ("Bearer \u00e9t\u00e9",),
]


@pytest.mark.parametrize("values", ODD_HEADERS)
def test_authenticate_reads_the_header_as_bearer_token_does(values: tuple[str, ...]) -> None:
    got = authenticated(values)
    try:
        expected: str | Unauthenticated = bearer_token(headers(*values))
    except Unauthenticated as refused:
        expected = refused
    if isinstance(expected, Unauthenticated):
        assert isinstance(got, Unauthenticated)
        assert (got.reason, got.message) == (expected.reason, expected.message)
    else:
        assert got == expected


def test_authenticate_reads_a_lower_case_header_name() -> None:
    assert authenticated(("Bearer t",), name="authorization") == "t"
