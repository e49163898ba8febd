"""Errors of loading a policy set: every problem with its file, line and column."""

from __future__ import annotations

from gateway.config.errors import Located, LocatedError

LoadIssue = Located
"""One problem in a policy, catalogue or overlay file (the located problem type of config)."""


class PolicyLoadError(LocatedError):
    """A policy set that cannot be used. ``errors`` lists every problem found, in file order.

    The gateway must not start (and a reload must not swap) on a set that raises this:
    fail closed.
    """

    what = "policy set"

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"{count} error{'s' if count != 1 else ''} in policy set"
        return head + ":\n" + "\n".join(self.errors)
