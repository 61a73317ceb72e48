"""Webhooks of approval events: what is sent, how it is signed, when a failed delivery is tried again. Pure.

The signature follows the Standard Webhooks specification (standardwebhooks.com), so receivers can verify it with
that project's libraries: headers `webhook-id` (the event's id: the same on every retry, so a receiver drops
duplicates of an at-least-once delivery), `webhook-timestamp` (Unix seconds) and `webhook-signature`
(`v1,` + base64 of HMAC-SHA256 over `id.timestamp.body`, keyed with the secret's bytes after its `whsec_` prefix).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson

SECRET_PREFIX = "whsec_"
MAX_ATTEMPTS = 10
"""Attempts before a delivery is given up (recorded as `gave_up` on the webhook's log and the decision's timeline)."""


def new_secret() -> str:
    """A fresh signing secret: `whsec_` + base64 of 32 random bytes (shown once, when the webhook is set)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header of `body`."""
    mac = hmac.new(_key(secret), f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether `headers` carry a valid signature of `body` (what a receiver checks; used by the tests and docs)."""
    try:
        expected = sign(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    except (KeyError, ValueError):
        return False
    return any(hmac.compare_digest(expected, given) for given in headers.get("webhook-signature", "").split())


def headers(secret: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "mandate-webhooks",
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, event_id, timestamp, body),
    }


def body(event: Mapping[str, Any], approval: Mapping[str, Any], *, team: str) -> bytes:
    """The JSON sent for one event: its type, id and time, the team it was sent to, and the approval as the API
    shows it (`GET /api/approvals/{id}`, its state at the event's time)."""
    return orjson.dumps(
        {
            "type": f"approval.{event['kind']}",
            "event_id": str(event["event_id"]),
            "at": _iso(event["at"]),
            "team": team,
            "approval": dict(approval),
        }
    )


def retry_at(attempt: int, now: datetime, *, base_s: float) -> datetime:
    """When to try again after failed attempt number `attempt` (1, 2, …): `base_s` doubled each time, at most an
    hour. With the default base of 5 s the ten attempts span about 43 minutes."""
    return now + timedelta(seconds=min(base_s * 2 ** (attempt - 1), 3600.0))


def _iso(moment: object) -> str | None:
    return moment.isoformat() if isinstance(moment, datetime) else None
