"""`mandate token create|list|revoke` (API tokens) and `mandate db roles create` (least-privilege database roles).

The secret of a new token is printed once, on stdout, and never again: only its SHA-256 is stored.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote, urlsplit, urlunsplit
from uuid import UUID

import typer
from rich.table import Table
from rich.text import Text

from mandate.console import err, out, settings
from mandate.db import roles
from mandate.db import tokens as tq
from mandate.db.connect import connect
from mandate.db.url import database_url
from mandate.errors import MandateError
from mandate.tokens import Role, digest, new_secret, parse_domains, parse_expiry

token_app = typer.Typer(help="API tokens: issue, list, revoke (docs/security.md).", no_args_is_help=True)
roles_app = typer.Typer(help="Least-privilege database roles for migrations and the server.", no_args_is_help=True)


@token_app.command("create")
def token_create(
    org: Annotated[str, typer.Option("--org", help="The organization (UUID) the token belongs to.")],
    role: Annotated[Role, typer.Option("--role", help="agent, approver, reader or admin.")],
    domains: Annotated[
        str | None, typer.Option("--domains", help="Its domains, comma-separated (or --all-domains).")
    ] = None,
    all_domains: Annotated[
        bool, typer.Option("--all-domains", help="Every domain of the organization, present and future.")
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="A name to recognise it by (default: role@domains).")
    ] = None,
    expires: Annotated[str, typer.Option("--expires", help="Lifetime: 12h, 90d, 2w, or never.")] = "90d",
    teams: Annotated[
        str | None,
        typer.Option(
            "--teams",
            help="An approver's owning teams, comma-separated: it answers PAUSEs routed to them (docs/approvals.md). "
            "Default: every team of its domains.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Issue it although the organization or a domain does not exist yet.")
    ] = False,
) -> None:
    """Issue a token. Its secret is printed once (keep it in a secret store); only its SHA-256 is stored."""
    try:
        organization_id = UUID(org)
    except ValueError:
        raise typer.BadParameter(f"not a UUID: {org!r}", param_hint="--org") from None
    if (domains is None) == (not all_domains):
        raise typer.BadParameter("give --domains a,b or --all-domains (one of them)", param_hint="--domains")
    try:
        chosen = None if all_domains else parse_domains(domains or "")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--domains") from None
    try:
        expires_at = parse_expiry(expires, datetime.now(UTC))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires") from None
    try:
        chosen_teams = None if teams is None else parse_domains(teams)
    except ValueError as exc:
        raise typer.BadParameter(str(exc).replace("domains", "teams"), param_hint="--teams") from None
    if chosen_teams is not None and role is not Role.APPROVER:
        raise typer.BadParameter("only an approver token names teams", param_hint="--teams")
    label = name or f"{role.value}@{'*' if chosen is None else ','.join(sorted(chosen))}"
    secret = new_secret()
    with connect(database_url(settings()), application="mandate token") as conn:
        if not force:
            if not tq.organization_exists(conn, organization_id):
                raise MandateError(
                    f"organization {organization_id} does not exist (apply its governance first, or --force)"
                )
            missing = [] if chosen is None else tq.unknown_domains(conn, organization_id, chosen)
            if missing:
                raise MandateError(f"organization {organization_id} has no domain {', '.join(missing)} (or --force)")
        token_id = tq.issue(
            conn,
            secret_sha256=digest(secret),
            name=label,
            organization_id=organization_id,
            domains=chosen,
            role=role,
            expires_at=expires_at,
            teams=chosen_teams,
        )
    err.print(
        Text(
            f"token {token_id} ({label}, role {role.value}) issued; expires "
            f"{'never' if expires_at is None else expires_at.isoformat(timespec='seconds')}"
        )
    )
    err.print("its secret follows, shown this once: keep it in a secret store (MANDATE_API_TOKEN for the SDK)")
    print(secret)


@token_app.command("list")
def token_list(
    org: Annotated[str | None, typer.Option("--org", help="Only this organization's tokens.")] = None,
) -> None:
    """Every token with its role, domains, expiry and revocation — never a secret."""
    organization_id = UUID(org) if org else None
    with connect(database_url(settings()), application="mandate token") as conn:
        rows = tq.list_tokens(conn, organization_id)
    table = Table("token id", "name", "organization", "role", "domains", "expires", "state")
    now = datetime.now(UTC)
    for r in rows:
        if r["revoked_at"] is not None:
            state = f"revoked {r['revoked_at']:%Y-%m-%d %H:%M}"
        elif r["expires_at"] is not None and r["expires_at"] <= now:
            state = "expired"
        else:
            state = "valid"
        table.add_row(
            str(r["token_id"]),
            Text(r["name"]),
            str(r["organization_id"]),
            r["role"],
            Text("(all)" if r["domains"] is None else ",".join(r["domains"])),
            "never" if r["expires_at"] is None else f"{r['expires_at']:%Y-%m-%d %H:%M}",
            state,
        )
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (from `mandate token list`).")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, recorded with the revocation.")] = None,
) -> None:
    """Revoke a token (an append-only revocation event). Every server refuses it within a second."""
    try:
        key = UUID(token_id)
    except ValueError:
        raise typer.BadParameter(f"not a token id: {token_id!r}", param_hint="TOKEN_ID") from None
    with connect(database_url(settings()), application="mandate token") as conn:
        try:
            when = tq.revoke(conn, key, reason)
        except KeyError:
            raise MandateError(f"no token {key}: `mandate token list` shows them") from None
    if when is None:
        out.print(f"token {key} was already revoked")
    else:
        out.print(f"token {key} revoked at {when.isoformat(timespec='seconds')}; servers refuse it within a second")


def _url_as(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@roles_app.command("create")
def roles_create(
    owner: Annotated[str, typer.Option("--owner", help="The role that owns schema mandate and runs migrations.")] = (
        roles.OWNER
    ),
    app: Annotated[str, typer.Option("--app", help="The role `mandate serve` connects as.")] = roles.APP,
) -> None:
    """Create (or update) the owner and application roles and their GRANTs; print both connection URLs once.
    Run it as a superuser; then serve with the app URL and migrate with the owner URL."""
    owner_password, app_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    url = database_url(settings())
    with connect(url, application="mandate db roles") as conn:
        try:
            created = roles.create_roles(
                conn, owner=owner, app=app, owner_password=owner_password, app_password=app_password
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--app") from None
    err.print(
        Text(f"{'created' if created.owner_created else 'updated'} {owner}: owns schema mandate, runs migrations")
    )
    err.print(Text(f"{'created' if created.app_created else 'updated'} {app}: {created.app_rights}"))
    err.print("their passwords were set now and are shown this once (docs/security.md):")
    print(f"MANDATE_OWNER_DATABASE_URL={_url_as(url, owner, owner_password)}")
    print(f"DATABASE_URL={_url_as(url, app, app_password)}")
