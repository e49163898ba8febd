"""Path templates (``/voorzitter/uitkomsten/{id}``) and matching a request path to one.

A template is literal segments and ``{name}`` segments; ``{name}`` matches exactly one
non-empty segment and becomes ``request.params.name``, percent-decoded. Literal segments
win over parameters (``/a/mijn`` before ``/a/{id}``), so the most specific template
decides, whichever order the templates were written in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from gateway.refusals import BadRequest

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


@dataclass(frozen=True, slots=True)
class PathTemplate:
    """One template, split into segments at build time."""

    text: str
    segments: tuple[tuple[str, bool], ...]
    """``(literal or parameter name, is_parameter)`` per segment."""

    @classmethod
    def parse(cls, text: str) -> PathTemplate:
        parts = text.strip("/").split("/") if text.strip("/") else []
        segments = []
        for part in parts:
            param = _PARAM.match(part)
            segments.append((param.group(1), True) if param else (part, False))
        return cls(text, tuple(segments))

    def match(self, segments: tuple[str, ...]) -> Mapping[str, str] | None:
        """The named parameters when *segments* (raw, still percent-encoded) fit."""
        if len(segments) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for (name, is_param), segment in zip(self.segments, segments, strict=True):
            if is_param:
                params[name] = unquote(segment)
            elif name != segment:
                return None
        return params

    @property
    def specificity(self) -> tuple[bool, ...]:
        """Sort key: literal segments first, position by position."""
        return tuple(is_param for _name, is_param in self.segments)


def split_path(raw_path: str) -> tuple[str, ...]:
    """The raw path's segments; :class:`BadRequest` for an empty, ``.`` or ``..`` segment or
    an encoded slash, which servers resolve differently than the template matched here."""
    parts = tuple(raw_path.strip("/").split("/")) if raw_path.strip("/") else ()
    for part in parts:
        if part in ("", ".", "..") or "%2f" in part.lower() or "%2e" in part.lower():
            raise BadRequest(
                "Path has an empty, dot or encoded-slash segment", reason="ambiguous_path"
            )
    return parts


class PathTemplates:
    """A set of templates, most specific first."""

    __slots__ = ("_templates",)

    def __init__(self, templates: Iterable[str]) -> None:
        parsed = {PathTemplate.parse(t) for t in templates}
        self._templates = tuple(sorted(parsed, key=lambda t: (t.specificity, t.text)))

    @property
    def templates(self) -> tuple[PathTemplate, ...]:
        return self._templates

    def match(self, segments: tuple[str, ...]) -> tuple[str, Mapping[str, str]] | None:
        """``(template, params)`` of the first template that fits, else None."""
        for template in self._templates:
            params = template.match(segments)
            if params is not None:
                return template.text, params
        return None
