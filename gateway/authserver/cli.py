"""``nid-gateway token issue``, ``nid-gateway keys generate`` and ``keys hash-secret``."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from gateway.authserver.signing_keys import KeyStore, KeyStoreError, generate_key
from gateway.authserver.tokens import TokenRequestError, issue_token
from gateway.config.errors import ConfigError
from gateway.config.loader import load_config
from gateway.config.secrets import generate_secret, hash_secret


def register(sub: Any) -> None:
    """Add the ``token`` and ``keys`` commands to the ``nid-gateway`` parser."""
    token = sub.add_parser("token", help="mint access tokens offline")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="SUBCOMMAND")
    issue = token_sub.add_parser(
        "issue", help="mint a token exactly as POST /auth/token would, and print it"
    )
    issue.add_argument("--config", required=True, type=Path, help="gateway.yaml")
    issue.add_argument("--client", required=True, help="client_id")
    issue.add_argument(
        "--scope", required=True, action="append", help="scope (space-separated; repeatable)"
    )
    issue.add_argument("--audience", required=True, help="audience URL (a route's audience)")
    issue.add_argument("--actor", help="act.sub, e.g. uzovi:5151 (must be allowed for the client)")
    issue.set_defaults(handler=_token_issue)

    keys = sub.add_parser("keys", help="signing keys and client secrets")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="SUBCOMMAND")
    gen = keys_sub.add_parser(
        "generate", help="add a new signing key pair (the new signing key) and rewrite jwks.json"
    )
    gen.add_argument("--out", required=True, type=Path, help="keys directory (signing.keys_dir)")
    gen.add_argument("--alg", choices=("RS256", "ES256"), default="ES256")
    gen.add_argument(
        "--if-missing", action="store_true", help="only when the directory holds no key yet"
    )
    gen.set_defaults(handler=_keys_generate)
    hashing = keys_sub.add_parser(
        "hash-secret",
        help="print a secret_hash for clients.yaml (reads the secret from stdin; "
        "--generate makes a new random secret)",
    )
    hashing.add_argument("--generate", action="store_true", help="generate a new secret")
    hashing.set_defaults(handler=_hash_secret)


def _token_issue(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        keystore = KeyStore.load(config)
        token = issue_token(
            config, keystore, args.client, args.scope, args.audience, actor=args.actor
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TokenRequestError as exc:
        print(f"error: {exc.error}: {exc.description}", file=sys.stderr)
        return 1
    print(token)
    return 0


def _keys_generate(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and not out.is_dir():
        print(f"error: {out} is not a directory", file=sys.stderr)
        return 2
    if args.if_missing and any(out.glob("*.pem")):  # an init container, started again
        print(f"{out} already holds a signing key; kept")
        return 0
    kid = generate_key(out, args.alg)
    print(f"created {out / (kid + '.pem')} ({args.alg}); it signs from now on")
    print(f"public keys: {out / 'jwks.json'}")
    return 0


def _hash_secret(args: argparse.Namespace) -> int:
    if args.generate:
        secret = generate_secret()
        print(f"secret: {secret}")
    elif sys.stdin.isatty():
        secret = getpass.getpass("client secret: ")
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        print("error: empty secret", file=sys.stderr)
        return 2
    print(f"secret_hash: {hash_secret(secret)}")
    return 0
