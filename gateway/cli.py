"""The ``nid-gateway`` command. Each room registers its own subcommands."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence

COMMAND_MODULES: dict[str, str] = {
    "serve": "gateway.serving.serve",  # serve [--workers N]
    "demo": "gateway.serving.demo",
    "policy": "gateway.policy.cli",  # policy check|test|explain
    "token": "gateway.authserver.cli",  # token issue
    "keys": "gateway.authserver.cli",  # keys generate|hash-secret
    "outbox": "gateway.delivery.cli",  # outbox list|show|replay|purge
}
"""Each command and the module that registers it (``register(sub)``), in help order."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``nid-gateway`` parser; with a known *command*, only that command's module is
    imported and registered: ``serve`` starts without loading the policy tooling, the
    outbox and token commands and the demo's example servers (their imports would be in
    every start). Otherwise (help, ``--version``, a typo) every command is registered."""
    from gateway import __version__

    parser = argparse.ArgumentParser(
        prog="nid-gateway",
        description="Policy enforcement point and authorization server for the iWlz nID network.",
    )
    parser.add_argument("--version", action="version", version=f"nid-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if command in COMMAND_MODULES:
        modules = [COMMAND_MODULES[command]]
    else:
        modules = list(dict.fromkeys(COMMAND_MODULES.values()))
    for module in modules:
        importlib.import_module(module).register(sub)
    return parser


EXIT_BROKEN_PIPE = 128 + 13
"""The status a shell reports for a command that SIGPIPE ended (``... | head``)."""


SERVING_COMMANDS = ("serve", "demo")
"""Commands that switch the cyclic garbage collector back on once serving
(:func:`gateway.serving.lifecycle.settle_heap`)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code.

    The cyclic garbage collector is off while the command starts: the imports and the
    gateway's construction allocate ~1M objects, nearly all kept for good, and CPython's
    collector scanned them ~230 times on the way (~15 % of ``serve``'s start-up). Other
    commands switch it on once parsed; serving ones once serving (the heap frozen first).

    Output piped into a reader that stops early (``| head``) ends the command quietly, as
    SIGPIPE ends other Unix tools: Python ignores SIGPIPE so that a server's writes to a
    closed socket are errors, not deaths, so the closed pipe surfaces as BrokenPipeError.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = build_parser(argv[0] if argv else None).parse_args(argv)
        if collecting and args.command not in SERVING_COMMANDS:
            gc.enable()
        code: int = args.handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that flush is silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    finally:
        if collecting:  # a caller in this process (tests) gets its collector back
            gc.enable()
    return code


if __name__ == "__main__":
    sys.exit(main())
