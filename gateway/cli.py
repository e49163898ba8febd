"""The ``nid-gateway`` command. Each room registers its own subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from gateway import __version__
    from gateway.authserver import cli as authserver_cli
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
