"""jsonschema-rs never reads the policy schema's patterns more leniently than Python's ``re``.

A policy file is checked first by jsonschema-rs and only its "valid" is trusted
(gateway/policy/source.py), so a pattern the Rust engine reads more leniently would let a
file pass that the jsonschema package refuses: fail open. ``\\s`` is the known case:
Python counts U+001C..U+001F and U+0085 as whitespace, the Rust engine does not, which is
why the schema's classes name them. (The other way round is harmless: Python's ``$``
also matches before a final newline, so a "no" from Rust that Python turns into a yes is
what the jsonschema package decided before jsonschema-rs came in.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest

from gateway.policy.source import SCHEMA_FILE

ODD = [chr(c) for c in range(0x21)] + ["\x7f", "\x85", "\xa0", "\u1680", "\u180e"]
ODD += ["\u2000", "\u200b", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff"]
SAMPLES = ["token.a", "/a/b", 'args_at."a.b"', "/deelnemers/x/y/graphql", "01-31", "A_B", "a-b"]


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


PATTERNS = sorted(set(_patterns(json.loads(SCHEMA_FILE.read_text()))))


def test_the_schema_has_patterns() -> None:
    assert len(PATTERNS) >= 10


@pytest.mark.parametrize("pattern", PATTERNS)
def test_rust_accepts_nothing_python_refuses(pattern: str) -> None:
    rust = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})
    python = re.compile(pattern)
    for sample in SAMPLES:
        for odd in ODD:
            for text in (sample, sample + odd, odd + sample, sample[:2] + odd + sample[2:]):
                if rust.is_valid(text):
                    assert python.search(text), (pattern, text)


def test_the_old_whitespace_class_would_differ() -> None:
    """Why the classes name U+001C..U+001F and U+0085: without them the engines disagree."""
    old = "^/[^\\s?]*$"
    assert jsonschema_rs.validator_for({"type": "string", "pattern": old}).is_valid("/a\x1cb")
    assert not re.search(old, "/a\x1cb")
