"""Suite-wide guard: no log line written during the whole test run carries a secret or token.

Every test's captured stdout/stderr is scanned for log lines (our JSON lines and the console
renderer's lines); a JWT, an unredacted ``Bearer`` credential or a demo client secret in any
of them fails the run, naming the test. Command output that is not a log line (``token
issue`` prints a token on purpose) is not a log line and is not scanned.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, settings

# Fixtures shared across test packages live in fixture modules, registered here (pytest
# reads ``pytest_plugins`` only in the root conftest); each package's conftest holds only
# its own fixtures, and helpers are imported from ``tests.fixtures``, never from a conftest.
pytest_plugins = ["tests.fixtures.gateway"]

# Property tests are judged by their examples, not their speed: on a shared, loaded machine
# a slow example must not fail a run (no deadline, no "too slow" health check). A test's own
# @settings overrides only what it names.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\bbearer\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}")
_DEMO_SECRET = re.compile(r"[a-z0-9-]+-demo-secret")
_CONSOLE_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\S+ \[(?:debug|info|warning|error|critical)")

_leaks: list[str] = []


def _log_lines(text: str) -> list[str]:
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        is_json_log = line.startswith("{") and '"event"' in line and '"timestamp"' in line
        if is_json_log or _CONSOLE_LINE.match(line):
            lines.append(line)
    return lines


def leaked_secret(line: str) -> str | None:
    """What kind of secret *line* shows, or None."""
    for kind, pattern in (
        ("JWT", _JWT),
        ("bearer credential", _BEARER),
        ("client secret", _DEMO_SECRET),
    ):
        if pattern.search(line):
            return kind
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Scan what this test phase wrote to stdout/stderr."""
    # A later phase's report repeats the earlier phases' sections: read only its own.
    own = "\n".join(
        content
        for header, content in report.sections
        if header.startswith("Captured std") and header.endswith(report.when)
    )
    for line in _log_lines(own):
        kind = leaked_secret(line)
        if kind is not None:
            _leaks.append(f"{report.nodeid} ({report.when}): {kind} in log line: {line[:300]}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when any log line leaked a secret."""
    if not _leaks:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.section("secrets in log lines", sep="=", red=True)
        for leak in _leaks:
            reporter.line(leak)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
