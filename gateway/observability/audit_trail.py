"""Append-only JSON-lines audit trail (NEN 7513: who did what with which record, when, outcome).

One line per record, written with a single ``write(2)`` on an ``O_APPEND`` descriptor, so a
record reaches the operating system before :meth:`AuditWriter.write` returns and a crash of
the gateway process loses nothing. What the ``fsync`` policy decides is when the OS is told
to put it on disk (i.e. what survives a power loss or kernel crash):

* ``always``: ``fsync`` after every record, in the caller's thread. Nothing acknowledged is
  lost, at the price of one disk flush per request on the event loop.
* ``interval`` (default): a background thread ``fsync``\\ s at most every ``fsync_interval``
  seconds when something was written; a power loss can lose that last interval.
* ``never``: the OS flushes when it likes (typically within ~30 s on Linux).

Rotation (by size and by UTC date) renames the full file to
``<stem>.<YYYY-MM-DD>.<n><suffix>`` and opens a fresh one; the record that triggered it goes
to the new file, so no record is ever lost or split. With several worker processes each
process writes its own file (``<stem>-<pid><suffix>``), because rotation by rename cannot be
coordinated between processes.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from gateway.config.model import AuditConfig

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def _utc_date(ts: float) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()


def _day_bounds(day: dt.date) -> tuple[float, float]:
    """The epoch seconds at which UTC *day* starts and ends."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    return start, start + 86_400.0


class AuditWriter:
    """Writes audit records to :attr:`path`, rotating and syncing per the :class:`AuditConfig`."""

    def __init__(self, config: AuditConfig, *, path: Path | None = None) -> None:
        """Open (create) the audit file now, so a bad path fails at start-up, not per request."""
        self.config = config
        self.path = path or config.path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0
        self._set_date(_utc_date(0))
        self._dirty = False
        self._closed = False
        self._open()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if config.fsync == "interval":
            self._thread = threading.Thread(target=self._sync_loop, name="audit-fsync", daemon=True)
            self._thread.start()

    def _open(self) -> None:
        self._fd = os.open(self.path, _FLAGS, 0o640)
        st = os.fstat(self._fd)
        self._size = st.st_size
        # An existing file belongs to the day it was last written.
        self._set_date(_utc_date(st.st_mtime) if st.st_size else _utc_date(time.time()))

    def write(self, record: Mapping[str, Any], *, now: float | None = None) -> None:
        """Append one record (a JSON-serialisable dict) as one line."""
        self.write_line(
            orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE), now=now
        )

    def write_line(self, data: bytes, *, now: float | None = None) -> None:
        """Append one already rendered record: one JSON object ending in a newline."""
        ts = time.time() if now is None else now
        with self._lock:
            if self._closed:
                raise RuntimeError("audit writer is closed")
            if self._size and (
                self._size + len(data) > self.config.max_bytes
                or (self.config.rotate_daily and not self._day_start <= ts < self._day_end)
            ):
                self._rotate(ts)
            written = os.write(self._fd, data)
            while written < len(data):  # short writes are rare but legal
                written += os.write(self._fd, data[written:])
            self._size += len(data)
            if self.config.fsync == "always":
                os.fsync(self._fd)
            else:
                self._dirty = True

    def _rotate(self, ts: float) -> None:
        """Close the current file under its dated name and start a new one (lock held)."""
        if self.config.fsync != "never":
            os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        target = self._rotated_name(self._date)
        os.rename(self.path, target)
        self._open()
        self._set_date(_utc_date(ts))
        self._dirty = False

    def _set_date(self, day: dt.date) -> None:
        """The day the current file belongs to (and its bounds, compared per write)."""
        self._date = day
        self._day_start, self._day_end = _day_bounds(day)

    def _rotated_name(self, day: dt.date) -> Path:
        stem, suffix = self.path.stem, self.path.suffix
        n = 1
        while True:
            candidate = self.path.with_name(f"{stem}.{day.isoformat()}.{n}{suffix}")
            if not candidate.exists():
                return candidate
            n += 1

    def rotated_files(self) -> list[Path]:
        """Files rotated away from :attr:`path`, oldest first."""
        stem, suffix = self.path.stem, self.path.suffix
        found = self.path.parent.glob(f"{stem}.*{suffix}")
        return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def sync(self) -> None:
        """fsync now if something was written since the last sync (not for ``never``)."""
        if self.config.fsync == "never":
            return
        with self._lock:
            if not self._dirty or self._closed:
                return
            # Sync a duplicate descriptor outside the lock: the event loop keeps writing
            # (and may rotate) while the disk flush runs.
            fd = os.dup(self._fd)
            self._dirty = False
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.config.fsync_interval):
            self.sync()

    def close(self) -> None:
        """Stop the sync thread, sync (unless ``never``) and close. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self._closed:
                return
            if self.config.fsync != "never":
                os.fsync(self._fd)
            os.close(self._fd)
            self._closed = True


def per_process_path(path: Path) -> Path:
    """``audit.jsonl`` -> ``audit-<pid>.jsonl``: one file per worker process."""
    return path.with_name(f"{path.stem}-{os.getpid()}{path.suffix}")
