"""`mandate webhooks set|list|remove`: where each owning team hears of approval events (docs/approvals.md).

Configured on the database as the owner role, like tokens (the server may read the configuration, never write
it). The signing secret of a new webhook is printed once, on stdout.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit
from uuid import UUID

import typer
from rich.table import Table
from rich.text import Text

from mandate.approvals import webhook
from mandate.console import err, out, settings
from mandate.db import webhooks as wq
from mandate.db.connect import connect
from mandate.db.url import database_url

webhooks_app = typer.Typer(
    help="Webhooks of approval events, per owning team: set, list, remove (docs/approvals.md).",
    no_args_is_help=True,
)

_ORG = typer.Option("--org", help="The organization (UUID).")
_TEAM = typer.Option("--team", help="The owning team, as the governance names it (e.g. dba-team).")


def _organization(org: str) -> UUID:
    try:
        return UUID(org)
    except ValueError:
        raise typer.BadParameter(f"not a UUID: {org!r}", param_hint="--org") from None


def _team(team: str) -> str:
    if not team.strip() or len(team.encode()) > 200 or "\x00" in team:
        raise typer.BadParameter("a team is 1–200 bytes of text", param_hint="--team")
    return team


@webhooks_app.command("set")
def webhooks_set(
    org: Annotated[str, _ORG],
    team: Annotated[str, _TEAM],
    url: Annotated[str, typer.Option("--url", help="Where to POST the events (http or https).")],
) -> None:
    """Send the team's approval events to URL, signed with a new secret (printed once: give it to the receiver)."""
    organization_id, team = _organization(org), _team(team)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url) or len(url) > 2000:
        raise typer.BadParameter(f"not an http(s) URL: {url!r}", param_hint="--url")
    secret = webhook.new_secret()
    with connect(database_url(settings()), application="mandate webhooks") as conn:
        webhook_id = wq.set_webhook(
            conn, organization_id=organization_id, team=team, url=url, secret=secret, created_by="mandate webhooks"
        )
    err.print(Text(f"webhook {webhook_id}: approval events of team {team} go to {url} from now on"))
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        err.print("warning: plain http: the events (not the secret) cross the network unencrypted", style="yellow")
    err.print("its signing secret follows, shown this once (Standard Webhooks: verify webhook-signature with it)")
    print(secret)


@webhooks_app.command("remove")
def webhooks_remove(org: Annotated[str, _ORG], team: Annotated[str, _TEAM]) -> None:
    """Stop sending the team's approval events (attempts already recorded stay in the history)."""
    organization_id, team = _organization(org), _team(team)
    with connect(database_url(settings()), application="mandate webhooks") as conn:
        wq.set_webhook(
            conn, organization_id=organization_id, team=team, url=None, secret=None, created_by="mandate webhooks"
        )
    out.print(Text(f"approval events of team {team} are no longer sent"))


@webhooks_app.command("list")
def webhooks_list(
    org: Annotated[str | None, typer.Option("--org", help="Only this organization's webhooks.")] = None,
) -> None:
    """The webhooks in force, with how many events each delivered and gave up on — never a secret."""
    organization_id = None if org is None else _organization(org)
    with connect(database_url(settings()), application="mandate webhooks") as conn:
        rows = wq.list_webhooks(conn, organization_id)
    table = Table("organization", "team", "url", "since", "delivered", "gave up")
    for r in rows:
        table.add_row(
            str(r["organization_id"]),
            Text(r["owning_team"]),
            Text(r["url"]),
            f"{r['created_at']:%Y-%m-%d %H:%M}",
            str(r["delivered"]),
            str(r["given_up"]),
        )
    out.print(table)
