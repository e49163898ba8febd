"""The running gateway's policy set: hot reload, atomic swap, shadow (dry-run) evaluation."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

import structlog

from gateway.facts import DecisionInput
from gateway.observability.events import NullObserver, Observer
from gateway.policy.decision import AuditValues, Decision
from gateway.policy.engine import PolicySet
from gateway.policy.errors import LoadIssue, PolicyLoadError
from gateway.policy.loader import load_policy_set, policy_files

log = structlog.get_logger("gateway.policy")


def _outcome(decision: Decision) -> str:
    # Coarse on purpose: these become metric labels (the observer logs the shadow rule).
    return "allow" if decision.allow else f"deny:{decision.status}"


class PolicyStore:
    """Holds the active (and optional shadow) policy set for the PEP.

    Construction loads both sets and raises PolicyLoadError on a broken one: the gateway
    must not start without a good set (fail closed). :meth:`reload` checks a new set
    fully before swapping it in with one reference assignment, so concurrent ``decide``
    calls always see either the old or the new set, never a mix.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        environment: str | None = None,
        shadow: Sequence[Path] = (),
        observer: Observer | None = None,
        require_tests: bool = False,
    ) -> None:
        self.require_tests = require_tests
        self.paths = tuple(Path(p) for p in paths)
        self.shadow_paths = tuple(Path(p) for p in shadow)
        self.environment = environment
        self.observer: Observer = observer or NullObserver()
        self._reload_lock = threading.Lock()
        self.active: PolicySet = load_policy_set(self.paths, environment=environment)
        """The set currently enforced: a plain attribute, read per request (the policy
        information point's lookups follow it), swapped by :meth:`reload` only."""
        self._shadow: PolicySet | None = (
            load_policy_set(self.shadow_paths, environment=environment)
            if self.shadow_paths
            else None
        )
        failures = self._test_failures()
        if failures:
            raise PolicyLoadError(failures)
        self._fingerprint = self._files_fingerprint()

    # ------------------------------------------------------------------ deciding
    @property
    def shadow(self) -> PolicySet | None:
        """The dry-run set, if any (never enforced)."""
        return self._shadow

    @property
    def version(self) -> str:
        """Content hash of the active set."""
        return self.active.version

    @property
    def shadow_version(self) -> str | None:
        """Content hash of the shadow set, if any."""
        return self._shadow.version if self._shadow else None

    @property
    def audit_blank(self) -> AuditValues:
        """Every audit name of the active set, with no value."""
        return self.active.audit_blank

    @property
    def files(self) -> tuple[Path, ...]:
        """The files of the active set (for ``/readyz``)."""
        return self.active.files

    def decide(self, facts: DecisionInput, *, explain: bool = False) -> Decision:
        """Decide with the active set; compare with the shadow set when one is loaded."""
        active = self.active  # one read: the whole decision uses one set
        shadow = self._shadow
        if shadow is None and not explain:
            # The set's own decide, in place (one frame less per request).
            op = facts.operation
            policy = active._index.get((op.operation_type, op.root_field))
            return active.deny(facts) if policy is None else policy.decide(facts)
        decision = active.decide(facts, explain=explain)
        if shadow is not None:
            self._compare(shadow, facts, decision)
        return decision

    def _compare(self, shadow: PolicySet, facts: DecisionInput, decision: Decision) -> None:
        # A shadow set must never change or break the answer: every failure is swallowed.
        try:
            other = shadow.decide(facts)
            if (
                other.allow != decision.allow
                or other.reason != decision.reason
                or (other.status != decision.status)
            ):
                self.observer.shadow_mismatch(
                    facts.route.path, _outcome(decision), _outcome(other), other.rule
                )
        except Exception as exc:  # the shadow must not affect the request
            with contextlib.suppress(Exception):
                log.warning("policy_shadow_failed", error=type(exc).__name__)

    # ------------------------------------------------------------------ reloading
    def _files_fingerprint(self) -> str:
        files, _ = policy_files([*self.paths, *self.shadow_paths])
        digest = hashlib.sha256()
        for file in sorted(files, key=str):
            digest.update(str(file).encode() + b"\0")
            try:
                digest.update(file.read_bytes())
            except OSError:
                digest.update(b"<missing>")
        return digest.hexdigest()

    def _test_failures(self) -> list[LoadIssue]:
        """With ``require_tests``: the failing cases of the set's ``*.test.yaml`` files (no
        test file at all is a failure too: nothing vouches for the set)."""
        if not self.require_tests:
            return []
        # Imported here: the test runner brings the GraphQL analyser and the claim mapping
        # (pydantic), which importing the policy engine must not load.
        from gateway.policy.tooling import run_tests, tests_of

        files = tests_of(self.paths)
        if not files:
            return [
                LoadIssue(
                    ", ".join(map(str, self.paths)),
                    0,
                    0,
                    "no *.test.yaml files",
                    "policy.require_tests needs the set's test cases",
                )
            ]
        return run_tests(files).failures()

    def _refuse(self, errors: list[str]) -> None:
        log.error("policy_reload_refused", errors=errors, kept_version=self.active.version)
        self.observer.policy_reload("refused", self.active.version)

    def reload(self) -> bool:
        """Load the files again; swap in the new set only if it is entirely good.

        Returns True when a new set is active. A broken set is refused: logged, reported
        to the observer, and the last good set keeps serving. So is, with
        ``require_tests``, a set whose ``*.test.yaml`` cases fail (logged with each failing
        case at ``file:line``).
        """
        with self._reload_lock:
            fingerprint = self._files_fingerprint()
            try:
                active = load_policy_set(self.paths, environment=self.environment)
                shadow = (
                    load_policy_set(self.shadow_paths, environment=self.environment)
                    if self.shadow_paths
                    else None
                )
            except PolicyLoadError as exc:
                self._refuse(exc.errors)
                self._fingerprint = fingerprint  # do not retry the same broken content
                return False
            failures = self._test_failures()
            if failures:
                # The set loads, but its own test cases say it decides wrongly.
                self._refuse([str(f) for f in failures])
                self._fingerprint = fingerprint
                return False
            # Each assignment is atomic; decide() reads each reference once.
            self.active = active
            self._shadow = shadow
            self._fingerprint = fingerprint
        log.info(
            "policy_reloaded",
            version=active.version,
            files=len(active.files),
            shadow_version=shadow.version if shadow else None,
        )
        self.observer.policy_reload("ok", active.version)
        return True

    def changed(self) -> bool:
        """Whether any policy file's content differs from what was last loaded."""
        return self._files_fingerprint() != self._fingerprint

    def watched_dirs(self) -> list[Path]:
        """The directories to watch: each configured directory, and a file's parent.

        A file's parent, not the file: an editor saves by writing a new file and renaming it
        over the old one, and a watch on the old inode would never see that.
        """
        dirs = {p if p.is_dir() else p.parent for p in (*self.paths, *self.shadow_paths)}
        return sorted(dirs, key=str)

    async def watch(self, stop: asyncio.Event, debounce: float = 2.0) -> None:
        """Reload when the files change, until *stop* is set.

        watchfiles (inotify; polling where that is unavailable) reports changes under
        :meth:`watched_dirs`, gathered for at most *debounce* seconds (an editor's burst of
        writes is one reload). Any change only triggers a content check: a reload happens
        when a policy file's bytes differ from what was last loaded, and a broken set is
        refused by :meth:`reload` (the last good one keeps serving). File reads run in a
        worker thread so the event loop keeps serving.
        """
        from watchfiles import awatch  # not imported by a start that watches nothing

        while not stop.is_set():
            try:
                async for _changes in awatch(
                    *self.watched_dirs(),
                    stop_event=stop,
                    debounce=round(debounce * 1000),
                    watch_filter=None,
                ):
                    if await asyncio.to_thread(self.changed):
                        await asyncio.to_thread(self.reload)
            except Exception as exc:  # a watcher hiccup (a directory gone) must not stop it
                log.error("policy_watch_failed", error=repr(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), debounce)
