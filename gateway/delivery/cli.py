"""``nid-gateway outbox list|show|replay|purge``: the operators' view of the outbox and
the uitvallijst, on the same store a running gateway uses (SQLite file or PostgreSQL).

A replayed delivery is pending and due at once; a running gateway takes it up on its next
look (``delivery.poll_interval``, 1 s by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.config.errors import ConfigError
from gateway.config.loader import load_config
from gateway.config.model import GatewayConfig
from gateway.delivery.status import public_view
from gateway.store.api import DELIVERY_STATES, Delivery, Store, StoreUnavailable
from gateway.store.open import open_store


def register(sub: Any) -> None:
    """Add ``outbox`` to the ``nid-gateway`` parser."""
    outbox = sub.add_parser("outbox", help="list, show, replay and purge reliable deliveries")
    commands = outbox.add_subparsers(dest="outbox_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, run: Callable[..., Awaitable[int]]) -> Any:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("--config", type=Path, required=True, help="gateway.yaml")
        parser.add_argument("--data-dir", type=Path, help="the store's folder (as demo --data-dir)")
        parser.set_defaults(handler=lambda args: _run(args, run))
        return parser

    listing = command("list", "one delivery per line, deliveryId first", _list)
    listing.add_argument("--state", choices=DELIVERY_STATES)
    listing.add_argument("--format", choices=("text", "json"), default="text")
    show = command("show", "one delivery with every attempt (JSON)", _show)
    show.add_argument("delivery_id", metavar="ID")
    replay = command("replay", "put dead deliveries back to pending, due now", _replay)
    replay.add_argument("delivery_ids", metavar="ID", nargs="+")
    purge = command("purge", "delete deliveries delivered before DATE", _purge)
    purge.add_argument(
        "--delivered-before",
        type=_date,
        required=True,
        metavar="DATE",
        help="ISO date or date-time (UTC unless it names an offset)",
    )


class NoOutbox(Exception):
    """The configuration has no ``store:`` section."""


def _date(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date (e.g. 2026-12-01 or 2026-12-01T12:00:00+01:00)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _config(args: argparse.Namespace) -> GatewayConfig:
    config = load_config(args.config)
    if config.store is None:
        raise NoOutbox(f"{args.config}: no store: section, so no outbox")
    if args.data_dir is not None:
        config = config.model_copy(update={"data_dir": args.data_dir.resolve()})
    return config


def _run(args: argparse.Namespace, run: Callable[..., Awaitable[int]]) -> int:
    async def main() -> int:
        store = await open_store(_config(args))
        try:
            return await run(store, args)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except (ConfigError, NoOutbox, StoreUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def detail(delivery: Delivery) -> dict[str, Any]:
    """``outbox show``: the public view plus who, when, the decision and every attempt."""
    return {
        **public_view(delivery),
        "sender": delivery.sender,
        "recipient": {"idType": delivery.recipient.id_type, "id": delivery.recipient.id},
        "createdAt": delivery.created_at.isoformat(),
        "finishedAt": delivery.finished_at.isoformat() if delivery.finished_at else None,
        "nextAttemptAt": delivery.next_attempt_at.isoformat(),
        "decisionId": delivery.decision_id,
        "traceId": delivery.trace_id,
        "decision": dict(delivery.decision),
        "attemptHistory": [
            {"at": a.at.isoformat(), "status": a.status, "error": a.error}
            for a in delivery.attempts
        ],
    }


async def _list(store: Store, args: argparse.Namespace) -> int:
    for delivery in await store.list_deliveries(args.state, limit=1_000_000):
        view = public_view(delivery)
        if args.format == "json":
            print(json.dumps(view))
            continue
        recipient = f"{delivery.recipient.id_type}:{delivery.recipient.id}"
        print(
            f"{delivery.delivery_id}  {delivery.state:9}  attempts={view['attempts']}"
            f"  {delivery.sender} -> {recipient}  {delivery.created_at.isoformat()}"
            + (f"  {view['lastError']}" if view["lastError"] else "")
        )
    return 0


async def _show(store: Store, args: argparse.Namespace) -> int:
    delivery = await store.get(args.delivery_id)
    if delivery is None:
        print(f"error: no delivery {args.delivery_id}", file=sys.stderr)
        return 1
    print(json.dumps(detail(delivery), indent=2))
    return 0


async def _replay(store: Store, args: argparse.Namespace) -> int:
    replayed = await store.replay(args.delivery_ids)
    for delivery_id in args.delivery_ids:
        if delivery_id in replayed:
            print(f"{delivery_id}  replayed")
        else:
            print(
                f"error: {delivery_id} is not dead (unknown, pending or delivered)", file=sys.stderr
            )
    return 0 if len(replayed) == len(set(args.delivery_ids)) else 1


async def _purge(store: Store, args: argparse.Namespace) -> int:
    count = await store.purge(args.delivered_before)
    print(f"purged {count} delivered before {args.delivered_before.isoformat()}")
    return 0
