"""The ``nid-gateway`` command. Each room registers its own subcommands."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from gateway import __version__
    from gateway.authserver import cli as authserver_cli
    from gateway.delivery import cli as outbox_cli
    from gateway.policy import cli as policy_cli
    from gateway.serving import demo, serve

    parser = argparse.ArgumentParser(
        prog="nid-gateway",
        description="Policy enforcement point and authorization server for the iWlz nID network.",
    )
    parser.add_argument("--version", action="version", version=f"nid-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(sub)  # serve [--workers N]
    demo.register(sub)  # demo
    policy_cli.register(sub)  # policy check|test|explain
    authserver_cli.register(sub)  # token issue, keys generate
    outbox_cli.register(sub)  # outbox list|show|replay|purge
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
    commands switch it on once parsed; serving ones once serving, after one collection.

    Output piped into a reader that stops early (``| head``) ends the command quietly, as
    SIGPIPE ends other Unix tools: Python ignores SIGPIPE so that a server's writes to a
    closed socket are errors, not deaths, so the closed pipe surfaces as BrokenPipeError.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        args = build_parser().parse_args(argv)
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
