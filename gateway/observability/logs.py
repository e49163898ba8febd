"""Process-wide logging set-up: structlog events as JSON lines (or console) on stdout.

Every log line, ours and the libraries' (aiohttp, asyncio), goes through the same processor
chain: level, ISO-8601 UTC timestamp, exception text, **redaction**, renderer. Stable keys:
``timestamp``, ``level``, ``event``, ``logger`` (stdlib records), then the event's fields.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import datetime as dt
import io
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import fields as dc_fields
from functools import lru_cache
from typing import Any, Literal

import orjson
import structlog
from structlog.typing import EventDict, Processor

from gateway.observability.redact import redact_event, sensitive_keys

LogFormat = Literal["json", "console"]

_lock = threading.Lock()
_configured: tuple[str, int] | None = None
_handler: logging.Handler | None = None
_level: int | None = None
# One list object for the life of the process: structlog loggers keep a reference to the
# list they were bound with, so re-configuring the format mutates it in place and every
# existing logger follows.
_PROCESSORS: list[Processor] = []


def _orjson_dumps(obj: Any, **_kw: Any) -> str:
    # default=str: an unexpected object type must never make logging raise.
    return orjson.dumps(obj, default=str).decode()


_pending: list[str | bytes] = []
"""Lines waiting for the end of the current event-loop iteration, each ending in a newline:
``bytes`` (UTF-8, the direct JSON lines) or ``str`` (structlog's and the libraries')."""

_flush_loop: asyncio.AbstractEventLoop | None = None
"""The loop a flush is scheduled on (None: none is)."""

_direct: tuple[Any, Any] = (None, None)
"""(the ``sys.stdout`` last written to, its binary buffer when bytes may go there directly,
else None): checked once per stdout object, not per flush."""


def _byte_sink(out: Any) -> Any:
    """*out*'s binary buffer when UTF-8 bytes written there are exactly the text *out* would
    write: a plain ``TextIOWrapper`` (not a subclass such as pytest's capture) encoding
    UTF-8 on a platform whose newline is ``\\n`` (sys.stdout's; no translation); else None."""
    global _direct
    if _direct[0] is out:
        return _direct[1]
    sink = None
    if type(out) is io.TextIOWrapper and os.linesep == "\n":
        try:
            utf8 = codecs.lookup(out.encoding).name == "utf-8"
        except LookupError:  # pragma: no cover - a wrapper only exists for a known codec
            utf8 = False
        if utf8:
            sink = out.buffer
    _direct = (out, sink)
    return sink


def flush_pending() -> None:
    """Write every pending line to the *current* ``sys.stdout`` in one call, and flush.

    Also the callback the event loop runs once per iteration with lines (no wrapper: it is
    on the per-request path).

    When every pending line is bytes and stdout is a plain UTF-8 text wrapper, the bytes go
    to its buffer once the wrapper's own pending text is flushed (same bytes, same order: no
    decode and re-encode of the line); otherwise the text goes through ``write``.
    """
    global _flush_loop
    _flush_loop = None  # it is the loop's scheduled callback too: the next line schedules anew
    if not _pending:
        return
    count = len(_pending)
    lines = _pending[:count]
    del _pending[:count]  # lines appended meanwhile (another thread) stay for the next flush
    out = sys.stdout
    sink = _byte_sink(out)
    if sink is not None:
        try:
            data = b"".join(lines)  # type: ignore[arg-type]
        except TypeError:  # a str line among them: the text path below
            pass
        else:
            out.flush()  # text written to the wrapper before goes first
            sink.write(data)
            sink.flush()
            return
    out.write("".join(line if isinstance(line, str) else line.decode() for line in lines))
    out.flush()


def emit_line(line: str) -> None:
    """Queue one rendered line for stdout.

    On the event loop, lines are written once per loop iteration (one ``write(2)`` for every
    request that finished in that iteration instead of one per line: logging is on the
    per-request path); off the loop (start-up, CLI, other threads) they are written at once.
    Order is kept, lines are never split, and an ``atexit`` hook writes what is left.
    """
    _queue(line + "\n")


def _queue(line: str | bytes) -> None:
    global _flush_loop
    _pending.append(line)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        flush_pending()
        return
    # One flush per loop iteration; a loop that stopped before running its flush (test
    # teardown) must not strand lines, so a different loop schedules anew.
    if _flush_loop is not loop:
        _flush_loop = loop
        loop.call_soon(flush_pending)


emit_bytes: Callable[[bytes], None] = _queue
"""Queue one line that is UTF-8 bytes ending in a newline (see :func:`emit_line`): the
direct JSON lines, written without a decode (one call: it is the line's per-request path)."""


atexit.register(flush_pending)


class StdoutLogger:
    """structlog logger writing each rendered line to the *current* ``sys.stdout``.

    Resolving ``sys.stdout`` at write time (not at configure time) keeps output capturable
    by test harnesses; lines are batched per event-loop iteration (see :func:`emit_line`).
    """

    def msg(self, message: str) -> None:
        """Write one line."""
        emit_line(message)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _logger_factory(*_args: Any) -> StdoutLogger:
    return StdoutLogger()


class _StdoutHandler(logging.Handler):
    """stdlib handler writing formatted records to the current ``sys.stdout``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            emit_line(self.format(record))
        except Exception:  # pragma: no cover - logging must never raise into the caller
            self.handleError(record)


_stamp: tuple[int, str] = (-1, "")
"""(second, its formatted ``YYYY-MM-DDTHH:MM:SS.`` prefix): one object, so a thread that
reads it never pairs one second with another's prefix."""


def iso_timestamp(now: float | None = None) -> str:
    """*now* (default: the current time) in ISO-8601 UTC: ``2026-11-29T10:00:00.123456Z``.

    The date-and-seconds part is formatted once per second; every line of that second only
    appends its microseconds (a log timestamp is on the per-request path).
    """
    global _stamp
    if now is None:
        now = time.time()
    second = int(now)
    cached_second, prefix = _stamp
    if second != cached_second:
        prefix = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _stamp = (second, prefix)
    micros = round((now - second) * 1_000_000)
    # str() of the number above a million, not a ``06d`` format spec (which is parsed on
    # every call: a third of this function's instructions).
    return f"{prefix}{str(micros + 1_000_000)[1:] if micros < 1_000_000 else '999999'}Z"


_stamp_bytes: tuple[int, bytes] = (-1, b"")
"""As :data:`_stamp`, encoded (the direct JSON lines' timestamp)."""
_DIGITS3 = tuple(b"%03d" % n for n in range(1000))
"""``000`` to ``999``: half of a timestamp's microseconds each."""


def line_stamp() -> bytes:
    """:func:`iso_timestamp` of now without its ``Z``, as bytes (the direct JSON lines').

    The date-and-seconds part is formatted and encoded once per second; the microseconds'
    two halves come from a table (no f-string, no str() of a number, no encode per line:
    a line's timestamp is on the per-request path; small-number arithmetic only, as a
    millisecond count of the epoch is a multi-digit integer whose arithmetic costs more
    than the table lookups)."""
    global _stamp_bytes
    now = time.time()
    second = int(now)
    cached_second, prefix = _stamp_bytes
    if second != cached_second:
        text = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        prefix = text.encode()
        _stamp_bytes = (second, prefix)
    micros = round((now - second) * 1_000_000)
    if micros >= 1_000_000:  # a fraction that rounds up to a whole second stays in its second
        return prefix + b"999999"
    return prefix + _DIGITS3[micros // 1000] + _DIGITS3[micros % 1000]


def add_timestamp(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: ``timestamp`` in ISO-8601 UTC (see :func:`iso_timestamp`)."""
    event_dict["timestamp"] = iso_timestamp()
    return event_dict


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


# The suspect bytes as ints: ``int in bytes`` is one memchr, while a bytes needle first fails
# a conversion to int (an exception raised and cleared inside CPython) before it searches.
_EQUALS, _QUOTE, _SPACE, _BACKSLASH = b"=' \\"
_LETTER_J = ord("J")


def could_hold_secret(body: bytes) -> bool:
    """False only when the compact JSON object *body* provably needs no redaction.

    Every string :func:`~gateway.observability.redact.redact_text` would change contains
    ``eyJ``, ``=``, a quote (rendered ``\\"`` or ``'``) or whitespace (a raw space, an escape
    with a backslash, or non-ASCII); a nested object may hold a secret by its key name. None
    of these occurs in compact JSON of flat, harmless fields. Each test is a memchr-speed
    search that stops at the first hit (the opening brace is the only ``{`` allowed): about
    half the instructions of the ``translate`` pass before, which walked and copied every
    byte (bench/bench_log_renderer.py --instructions).
    """
    return (
        _EQUALS in body
        or _QUOTE in body
        or _SPACE in body
        or _BACKSLASH in body
        or body.find(b"{", 1) != -1
        # A three-byte search walks the line; the memchr for its rare last letter first
        # settles most lines without it.
        or (_LETTER_J in body and body.find(b"eyJ") != -1)
        or not body.isascii()
    )


_SAFE_KEYS: dict[type, bool] = {}
"""Per dataclass type: none of its field names is sensitive (checked once)."""


def _keys_safe(fields: Any) -> bool:
    # A dict (the decision log's fields) skips the ABC check, a Python-level call.
    if type(fields) is dict or isinstance(fields, Mapping):
        return not sensitive_keys(tuple(fields))
    kind = type(fields)
    safe = _SAFE_KEYS.get(kind)
    if safe is None:
        safe = _SAFE_KEYS[kind] = not sensitive_keys(tuple(f.name for f in dc_fields(fields)))
    return safe


def as_record(fields: Any) -> dict[str, Any]:
    """*fields* (a mapping or a dataclass instance) as a dict, every field under its name."""
    if isinstance(fields, Mapping):
        return dict(fields)
    return {f.name: getattr(fields, f.name) for f in dc_fields(fields)}


# Why a direct path beside structlog's chain (issue 11 asked for structlog's own processors
# unless bench/ shows a gain that matters): bench/bench_log_renderer.py --instructions,
# 2026-12-03 (remeasured after the bench logged the flat fields the real code logs), one
# decision line: this path 65.9k instructions, our structlog chain 226.1k, structlog's stock
# processors (TimeStamper, JSONRenderer(orjson), BytesLoggerFactory) plus redaction 229.8k.
# The ~160k saved is ~14 % of a whole gateway request with its upstream round trip (1,111k,
# bench_instructions.py); most of the chain's cost is the per-value redaction walk that the
# byte scan below replaces.
def render_flat(fields: Any, *, keys_safe: bool = False) -> bytes | None:
    """*fields* as compact JSON when it provably needs no redaction, else None.

    *fields* is a mapping or a dataclass instance of flat values (scalars, strings, lists or
    tuples of those). None means: take the full path (:func:`redact_event`), because a key is
    named like a secret, a value could hold one (see :func:`could_hold_secret`), or orjson
    cannot render a value. *keys_safe*: the caller has checked that no key is named like a
    secret (the decision log, whose key set is fixed but for the audit names).
    """
    if not keys_safe and not _keys_safe(fields):
        return None
    try:
        body = orjson.dumps(fields)
    except TypeError:  # a value orjson cannot render: the full chain str()s it
        return None
    return None if could_hold_secret(body) else body


_direct_levels: frozenset[str] = frozenset()
"""The levels whose lines are written now, when the output is JSON (else empty)."""


def direct_json(level: str) -> bool:
    """True when a line at *level* is to be written now as direct JSON bytes (the output is
    JSON and the level passes the filter): the caller then writes the whole line itself
    (:data:`emit_bytes`, :func:`line_stamp`); False means: take :func:`emit_json_event`,
    which filters it or renders it through structlog's chain (console output)."""
    return level in _direct_levels


def json_output() -> bool:
    """True when log lines are JSON (:func:`emit_json_event` then writes a given body as is)."""
    return _configured is not None and _configured[0] == "json"


def emit_json_event(
    logger: str, level: str, event: str, fields: Any, *, body: bytes | None = None
) -> None:
    """Log one event by the shortest safe path (the decision log, once per request).

    The line is the one ``get_logger(logger).<level>(event, **fields)`` writes: same keys in
    the same order, same level filter, same redaction. With JSON output the fields are
    rendered by :func:`render_flat` (or *body*, its result, when the caller has it already)
    and written directly; console output and fields that need redaction take the full
    structlog chain.
    """
    levelno = _LEVELS[level]
    if _level is not None and levelno < _level:
        return
    if _configured is not None and _configured[0] == "json":
        if body is None:
            body = render_flat(fields)
        if body is not None:
            emit_json_body(logger, level, event, body)
            return
    getattr(get_logger(logger), level)(event, **as_record(fields))


def emit_json_body(logger: str, level: str, event: str, body: bytes) -> bool:
    """Write :func:`emit_json_event`'s line for *body*, its fields already rendered and
    proven clean (:func:`render_flat`, or the decision log's own render); False, writing
    nothing, when the output is not JSON (the caller then takes :func:`emit_json_event` with
    the fields). The decision log's call per request: no fields built on this path."""
    if _configured is None or _configured[0] != "json":
        return False
    if _level is not None and _LEVELS[level] < _level:
        return True
    head, tail = _frame(logger, event, level)
    mid = (body[1:-1], b",", tail) if len(body) > 2 else (tail,)
    emit_bytes(b"".join((head, *mid, line_stamp(), b'Z"}\n')))
    return True


@lru_cache(maxsize=64)
def _frame(logger: str, event: str, level: str) -> tuple[bytes, bytes]:
    """The fixed text of a direct line around its fields: ``{"logger":...,`` and
    ``"event":...,"level":...,"timestamp":"`` (a few code constants: cached)."""
    return (
        b'{"logger":' + orjson.dumps(logger) + b",",
        b'"event":' + orjson.dumps(event) + b',"level":"' + level.encode() + b'","timestamp":"',
    )


CONSOLE_VALUE_CHARS = 48
"""Console values longer than this lose their middle (JSON lines keep them whole)."""
CONSOLE_HIDDEN = frozenset(
    {"request_id", "trace_id", "jti", "root_field", "operation_type", "records"}
)
"""Fields the console leaves out: correlation ids for machines (decision_id stays, for
``policy explain --decision-id``) and fields that repeat others (operation_name, subjects)."""
CONSOLE_WHOLE = frozenset({"event", "exception", "reason"})
"""Values the console never shortens."""


def _console_view(event_dict: EventDict) -> EventDict:
    """What a person reads (the demo): no empty or hidden fields, durations to 0.1 ms, long
    values (claims, paths, lists) shortened in the middle, so that a line stays readable.
    Runs after redaction."""
    view: EventDict = {}
    for key, value in event_dict.items():
        if value is None or key in CONSOLE_HIDDEN:
            continue
        if isinstance(value, float):
            value = round(value, 1)
        elif key not in CONSOLE_WHOLE and not isinstance(value, int):
            text = value if isinstance(value, str) else repr(value)
            if len(text) > CONSOLE_VALUE_CHARS:
                half = CONSOLE_VALUE_CHARS // 2
                value = f"{text[:half]}…{text[-half + 1 :]}"
        view[key] = value
    return view


def _renderer(log_format: LogFormat) -> Processor:
    if log_format == "console":
        console = structlog.dev.ConsoleRenderer(colors=False)
        return lambda logger, name, event_dict: console(logger, name, _console_view(event_dict))
    return structlog.processors.JSONRenderer(serializer=_orjson_dumps)


def shared_processors() -> list[Processor]:
    """Processors both structlog events and stdlib records go through, before rendering."""
    return [
        structlog.processors.add_log_level,
        add_timestamp,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        # Redaction runs after exception formatting so traceback text is covered too.
        redact_event,
    ]


def configure_logging(log_format: LogFormat = "json", level: str = "info") -> None:
    """Configure structlog and the stdlib root logger for this process.

    Idempotent: a repeated call with the same settings does nothing; a call with other
    settings re-configures (the last call wins: the format applies to every logger at once,
    a new level to loggers bound afterwards). Safe to call from every ``create_app``.
    """
    global _configured, _handler, _level, _direct_levels
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    wanted = (log_format, numeric)
    with _lock:
        if _configured == wanted:
            return
        renderer = _renderer(log_format)
        _PROCESSORS[:] = [*shared_processors(), renderer]
        if _level != numeric:
            structlog.configure(
                processors=_PROCESSORS,
                wrapper_class=structlog.make_filtering_bound_logger(numeric),
                logger_factory=_logger_factory,
                cache_logger_on_first_use=True,
            )
            _level = numeric
        # Library logs (aiohttp.server errors, aiohttp.access, asyncio) take the same path.
        formatter = structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared_processors()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
        handler = _StdoutHandler()
        handler.setFormatter(formatter)
        root = logging.getLogger()
        if _handler is not None:
            root.removeHandler(_handler)
        root.addHandler(handler)
        root.setLevel(numeric)
        _handler = handler
        _configured = wanted
        _direct_levels = frozenset(
            name for name, value in _LEVELS.items() if log_format == "json" and value >= numeric
        )


def get_logger(name: str) -> Any:
    """A structlog logger bound with ``logger=<name>``."""
    return structlog.get_logger(name).bind(logger=name)
