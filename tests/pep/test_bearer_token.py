"""The bearer token is read from the ``Authorization`` header alone, its scheme in any case."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.pep.authenticate import bearer_token
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
