"""`mandate approvals list|show|approve|reject|withdraw`: the approval requests of PAUSEs, through a server's API.

Unlike the database commands these talk HTTP, as an approver would from a laptop: the server is `--url` (default
MANDATE_URL, else http://127.0.0.1:3000) and the token `--token` (default MANDATE_API_TOKEN). They go through the
SDK (`mandate.client`); its errors become one sentence and exit code 1 here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from typing import Annotated, Any, cast
from uuid import UUID

import typer
from rich.table import Table
from rich.text import Text

from mandate.client import (
    Approval,
    ApprovalConflict,
    ApprovalState,
    MandateClient,
    MandateNotFound,
    MandateUnavailable,
)
from mandate.client import MandateError as ClientError
from mandate.console import out
from mandate.errors import MandateError

DEFAULT_URL = "http://127.0.0.1:3000"
STATES = ("pending", "approved", "rejected", "withdrawn", "expired", "consumed")

approvals_app = typer.Typer(
    help="Approval requests of PAUSEs: list, show, approve, reject, withdraw (through the server's API).",
    no_args_is_help=True,
)

Url = Annotated[str, typer.Option("--url", envvar="MANDATE_URL", help="The Mandate server.", show_default=DEFAULT_URL)]
Token = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="MANDATE_API_TOKEN", help="An API token (approver or admin to resolve).", show_default=False
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]
Reason = Annotated[str | None, typer.Option("--reason", help="Why, recorded with the event (at most 2000 bytes).")]
ApprovalId = Annotated[str, typer.Argument(help="The approval request's id (from `mandate approvals list`).")]


@contextmanager
def _client(url: str, token: str | None) -> Iterator[MandateClient]:
    """A client of `url`; the SDK's errors leave as one sentence each (cli.py makes them exit code 1)."""
    try:
        client = MandateClient(url, token=token or None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--url") from None
    try:
        with client:
            yield client
    except ClientError as exc:
        raise MandateError(_sentence(exc, url)) from None


def _sentence(exc: ClientError, url: str) -> str:
    """The server's own sentence, with what to do where the server cannot know it."""
    said = exc.body.get("error")
    message = str((said.get("message") if isinstance(said, dict) else None) or exc.message)
    if isinstance(exc, ApprovalConflict):
        return f"{message} ({exc.code})"
    if isinstance(exc, MandateUnavailable):
        return exc.message
    if isinstance(exc, MandateNotFound):
        return f"{message} (or this token may not see it)"
    if exc.status_code == 401:
        return f"{url} refused the request ({message}); pass --token or set MANDATE_API_TOKEN"
    if exc.status_code == 403:
        return f"{message}; approve and reject take an approver or admin token, withdraw the asking agent's token"
    return message


def _uuid(text: str, hint: str = "APPROVAL_ID") -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise typer.BadParameter(f"not a UUID: {text!r}", param_hint=hint) from None


@approvals_app.command("list")
def approvals_list(
    state: Annotated[str, typer.Option("--state", help=f"One of {', '.join(STATES)}.")] = "pending",
    domain: Annotated[str | None, typer.Option("--domain", help="Only this domain.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="The organization (default: the token's).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="Show at most this many.")] = 50,
    as_json: Json = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """The approval requests in a state (pending by default), oldest first: what each waits for and until when."""
    if state not in STATES:
        raise typer.BadParameter(f"{state!r} is not one of {', '.join(STATES)}", param_hint="--state")
    organization_id = None if org is None else _uuid(org, "--org")
    with _client(url, token) as client:
        found = list(
            islice(
                client.approvals.list(
                    state=cast(ApprovalState, state),
                    domain=domain,
                    organization_id=organization_id,
                    page_size=min(limit, 500),
                ),
                limit,
            )
        )
    if as_json:
        _print_json([dict(a.body) for a in found])
        return
    if not found:
        out.print(Text(f"no {state} approval requests" + (f" in {domain}" if domain else "")))
        return
    now = datetime.now(UTC)
    table = Table("approval id", "state", "domain", "action", "waiting for", "expires")
    for a in found:
        table.add_row(
            str(a.approval_id),
            a.state,
            Text(a.domain),
            Text(_action(a)),
            Text(", ".join(a.missing) or "-"),
            _expiry(a.expires_at, now, short=True),
        )
    out.print(table)


@approvals_app.command("show")
def approvals_show(approval_id: ApprovalId, as_json: Json = False, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """One approval request: its state, the action it is bound to, each requirement and who satisfied it, its expiry
    and its events."""
    key = _uuid(approval_id)
    with _client(url, token) as client:
        approval = client.approvals.get(key)
    if as_json:
        _print_json(dict(approval.body))
        return
    _show(approval)


def _show(a: Approval) -> None:
    now = datetime.now(UTC)
    b = a.binding
    escalation = f", escalation {' → '.join(a.escalation)}" if a.escalation else ""
    rows: list[tuple[str, str]] = [
        ("approval", f"{a.approval_id}  {a.state.upper()}"),
        ("decision", f"{a.decision_id}, stage {a.stage} (verdict {a.verdict_id})"),
        ("domain", f"{a.domain} (organization {a.organization_id})"),
        ("action", _action(a)),
        ("signals", ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted((b.get("signals") or {}).items())) or "-"),
        ("scope", ", ".join(f"{k}={v}" for k, v in sorted((b.get("attribution") or {}).items())) or "-"),
        ("authority", f"scope {a.scope_id or '-'}, owner {a.owning_team or '-'}{escalation}"),
        ("spec", f"{a.spec_id or '-'} version {a.spec_version or '-'}"),
        ("binding", f"sha256 {a.binding_digest}"),
        ("expires", _expiry(a.expires_at, now)),
    ]
    for i, r in enumerate(a.requirements):
        done = f"satisfied by {r.by or r.by_token_id or 'unknown'}" if r.satisfied else "waiting"
        rows.append(("requires" if i == 0 else "", f"{r.requirement}: {done}"))
    for i, e in enumerate(a.events):
        what = e.kind + (f" {e.requirement}" if e.requirement else "") + f" by {e.name or e.token_id or 'unknown'}"
        when = "" if e.at is None else f"{e.at:%Y-%m-%d %H:%M:%S} "
        rows.append(("events" if i == 0 else "", when + what + (f": {e.reason}" if e.reason else "")))
    if not a.events:
        rows.append(("events", "none yet"))
    if a.consumed_by is not None:
        c = a.consumed_by
        rows.append(("used by", f"decision {c.get('decision_id')}, stage {c.get('stage')}, at {c.get('at')}"))
    for label, value in rows:
        out.print(Text(f"{label:<10} {value}"))


@approvals_app.command("approve")
def approvals_approve(
    approval_id: ApprovalId,
    requirement: Annotated[
        str | None,
        typer.Option("--requirement", help="The requirement this approval satisfies (needed when there are several)."),
    ] = None,
    reason: Reason = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Satisfy one requirement of a pending request. It is approved once every requirement is, each by a different
    approver; then the agent may resume with it, once."""
    key = _uuid(approval_id)
    with _client(url, token) as c:
        a = c.approvals.approve(key, requirement=requirement, reason=reason)
    if a.pending:
        out.print(Text(f"approval {a.approval_id} is still pending: waiting for {', '.join(a.missing)}"))
    else:
        out.print(Text(f"approval {a.approval_id} is {a.state}: the agent may resume with it, once"))


@approvals_app.command("reject")
def approvals_reject(
    approval_id: ApprovalId, reason: Reason = None, url: Url = DEFAULT_URL, token: Token = None
) -> None:
    """Reject a pending request: the agent must not proceed, and a resume with it is refused."""
    key = _uuid(approval_id)
    with _client(url, token) as c:
        a = c.approvals.reject(key, reason=reason)
    out.print(Text(f"approval {a.approval_id} is {a.state}: the agent must not proceed"))


@approvals_app.command("withdraw")
def approvals_withdraw(
    approval_id: ApprovalId, reason: Reason = None, url: Url = DEFAULT_URL, token: Token = None
) -> None:
    """Withdraw a request (pending, or approved and not yet used): with the token of the agent that asked, or an
    admin's."""
    key = _uuid(approval_id)
    with _client(url, token) as c:
        a = c.approvals.withdraw(key, reason=reason)
    out.print(Text(f"approval {a.approval_id} is {a.state}: nobody can resume with it"))


def _action(a: Approval) -> str:
    b = a.binding
    return f"{b.get('intent', '?')} by {b.get('actor', '?')} on {b.get('target', '?')}"


def _expiry(moment: datetime | None, now: datetime, *, short: bool = False) -> str:
    """`2026-05-04T12:00:00+00:00 (in 1 h 05 min)`; `short`: the part in brackets only."""
    if moment is None:
        return "never"
    left = (moment - now).total_seconds()
    hours, rest = divmod(int(left), 3600)
    when = "passed" if left <= 0 else f"in {hours} h {rest // 60:02d} min" if hours else f"in {rest // 60} min"
    return when if short else f"{moment.isoformat(timespec='seconds')} ({when})"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
