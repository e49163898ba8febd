"""The network's adresboek: where each deelnemer receives notifications.

The file is the interim iWlz format (iStandaarden/iWlz-adresboek-public):
``{"electronicServices": [...]}``, one entry per service with ``gegevensdienstId``
(``<organisation>_<REGISTER|NOTIFICATIE|MELDING>_<PRD|TST|ACC>``), the PEP
(``authorizationEndpoint``), the authorization server (``tokenEndpoint``) and per
``systeemrollen[]`` code the resource endpoint. It is checked against the JSON Schema
``schema.json`` (``config/schemas/adresboek.schema.json`` links to it) and every mistake is
reported at its ``file:line:col``.

:class:`AdresboekSource` keeps the last good adresboek and reloads it like the policies
(file watch, SIGHUP): a broken file is refused and logged, the last good one keeps serving.
:meth:`AdresboekSource.resolve` answers "recipient -> endpoint" for the central notification
route, and for whatever else delivers to a recipient later (the delivery worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from gateway.config.errors import Located, LocatedError
from gateway.config.model import AdresboekConfig
from gateway.config.yamlsource import Source, read_source
from gateway.observability.events import NullObserver, Observer

if TYPE_CHECKING:
    import jsonschema  # imported by _validator: a start without an adresboek never needs it

log = structlog.get_logger("gateway.adresboek")

SCHEMA_FILE = Path(__file__).with_name("schema.json")
NOTIFICATIE = "NOTIFICATIE"
"""The function part of a gegevensdienstId whose services receive notifications."""


class AdresboekError(LocatedError):
    """An adresboek file that cannot be used: every problem, at ``file:line:col``."""

    what = "adresboek"


@dataclass(frozen=True, slots=True)
class Recipient:
    """A recipient found in the adresboek: its scope kind and where it receives."""

    id_type: str
    id: str
    kind: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class Adresboek:
    """One loaded adresboek: the document as published and its notification endpoints."""

    document: Mapping[str, Any]
    """The file's JSON, served unchanged at ``GET /adresboek``."""
    version: str
    """A short digest of the file's bytes (logged on every reload)."""
    endpoints: Mapping[tuple[str, str], str]
    """(organisation, systeemrolcode) -> resource endpoint, for the configured environment."""


@cache
def _validator() -> jsonschema.Draft202012Validator:
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def load_adresboek(file: Path, environment: str) -> Adresboek:
    """Read, parse and validate *file*; :class:`AdresboekError` lists every mistake."""
    try:
        raw = file.read_bytes()
        document = json.loads(raw)
    except OSError as exc:
        raise AdresboekError([Located(str(file), 0, 0, f"cannot read: {exc.strerror}")]) from None
    except ValueError as exc:
        line, col = getattr(exc, "lineno", 0), getattr(exc, "colno", 0)
        message = getattr(exc, "msg", str(exc))
        raise AdresboekError([Located(str(file), line, col, f"invalid JSON: {message}")]) from None
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        source = _positions(file)
        raise AdresboekError([_locate(source, error) for error in errors])
    issues: list[Located] = []
    endpoints: dict[tuple[str, str], str] = {}
    seen: set[str] = set()
    for index, service in enumerate(document["electronicServices"]):
        dienst = service["gegevensdienstId"]
        if dienst in seen:
            at = ("electronicServices", index, "gegevensdienstId")
            issues.append(_positions(file).issue(at, f"duplicate gegevensdienstId {dienst!r}"))
        seen.add(dienst)
        organisation, function, env = dienst.rsplit("_", 2)
        if function != NOTIFICATIE or env != environment:
            continue
        for rol in service["systeemrollen"]:
            url = rol["resourceEndpoint"]["resourceEndpointuri"]
            endpoints[(organisation, rol["systeemrolcode"])] = url
    if issues:
        raise AdresboekError(issues)
    version = hashlib.sha256(raw).hexdigest()[:12]
    return Adresboek(document=document, version=version, endpoints=endpoints)


def _positions(file: Path) -> Source:
    """The file read with positions (JSON is YAML); positionless if YAML cannot read it."""
    source, _issues = read_source(file)
    return source


def _locate(source: Source, error: jsonschema.ValidationError) -> Located:
    """*error* at its value; an unexpected key at that key (a typo is where it is)."""
    path = tuple(error.absolute_path)
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = [key for key in error.instance if key not in known]
        if extra:
            return source.issue((*path, extra[0]), f"{where}: {error.message}", key=True)
    return source.issue(path, f"{where}: {error.message}")


class AdresboekSource:
    """The active adresboek of one gateway, reloaded when its file changes.

    The first load raises :class:`AdresboekError` (the gateway must not start without a
    usable adresboek; the caller logs it loaded: ``policy explain`` loads one too, quietly);
    later reloads keep the last good one and log why.
    """

    def __init__(self, config: AdresboekConfig, observer: Observer | None = None) -> None:
        self.config = config
        self._observer = observer or NullObserver()
        self._lock = threading.Lock()
        self._active = load_adresboek(config.file, config.environment)
        self._fingerprint = self._file_digest()

    @property
    def active(self) -> Adresboek:
        """The last good adresboek."""
        return self._active

    def kind(self, id_type: str) -> str | None:
        """The scope kind of recipients with identifier type *id_type* (None: not one the
        adresboek can find)."""
        ontvanger = self.config.ontvangers.get(id_type)
        return ontvanger.kind if ontvanger is not None else None

    def resolve(self, id_type: str, ident: str) -> Recipient | None:
        """The recipient *id_type*/*ident* with its notification endpoint, or None when the
        adresboek has none for it (the first of the configured systeemrollen found wins)."""
        ontvanger = self.config.ontvangers.get(id_type)
        if ontvanger is None:
            return None
        organisation = ontvanger.organisaties.get(ident, ident)
        endpoints = self._active.endpoints
        for rol in self.config.systeemrollen:
            url = endpoints.get((organisation, rol))
            if url is not None:
                return Recipient(id_type, ident, ontvanger.kind, self._moved(url))
        return None

    def _moved(self, url: str) -> str:
        """The endpoint where the demo actually serves it (``--upstream``, bundled servers)."""
        return self.config.upstream or self.config.moved.get(url, url)

    # -- reloading ------------------------------------------------------------------------
    def _file_digest(self) -> str:
        try:
            return hashlib.sha256(self.config.file.read_bytes()).hexdigest()
        except OSError:
            return "<missing>"

    def changed(self) -> bool:
        """Whether the file's bytes differ from what was last loaded (or refused)."""
        return self._file_digest() != self._fingerprint

    def reload(self) -> bool:
        """Load the file again; True when a new adresboek is active. A broken file is
        refused (logged with every mistake) and the last good adresboek keeps serving."""
        with self._lock:
            self._fingerprint = self._file_digest()
            try:
                active = load_adresboek(self.config.file, self.config.environment)
            except AdresboekError as exc:
                log.error(
                    "adresboek_reload_refused", errors=exc.errors, kept_version=self._active.version
                )
                self._observer.adresboek_reload("refused")
                return False
            self._active = active
        log.info("adresboek_reloaded", version=active.version, file=str(self.config.file))
        self._observer.adresboek_reload("applied")
        return True

    async def watch(self, stop: asyncio.Event, debounce: float = 2.0) -> None:
        """Reload when the file changes, until *stop* is set (the file's folder is watched:
        an editor renames a new file over the old one)."""
        from watchfiles import awatch  # not imported by a start that watches nothing

        while not stop.is_set():
            try:
                async for _changes in awatch(
                    self.config.file.parent,
                    stop_event=stop,
                    debounce=round(debounce * 1000),
                    watch_filter=None,
                ):
                    if await asyncio.to_thread(self.changed):
                        await asyncio.to_thread(self.reload)
            except Exception as exc:  # a watcher hiccup must not stop reloading for good
                log.error("adresboek_watch_failed", error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), debounce)
