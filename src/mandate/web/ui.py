"""The read-only web UI (RFC-003): server-rendered pages over the same query functions as the JSON API. This
module holds what every page shares — rendering, the time zone, where the user looks, the filter form, links —
and each page lives in its own module:

    ui_decisions.py    GET /                          the decisions, filtered, counted, charted, paged
    ui_decision.py     GET /decisions/{decision_id}   one decision
    ui_exports.py      GET /export.csv, /export.json  the decisions of a filter, streamed
    ui_governance.py   GET /scopes, /specs, /migrations
    ui_approvals.py    GET /approvals, /findings      overview.py GET /overview      catalog.py  policy and scope pages

Every route is a GET and only reads. Pages render what is stored — verdicts, explanations, summaries — and never
re-evaluate a policy.

Where the user looks is explicit. The organization is fixed when there is one and chosen otherwise (never
inferred); the domain is the first one of the organization unless the URL names another — another domain's rows
appear only when the user picks that domain, or `*` (all domains). Times are shown, and `datetime-local` inputs
read, in the time zone `tz` (an IANA name, default UTC). Bad parameters give a page that says what to fix (400).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
import orjson
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape
from psycopg import AsyncConnection

import mandate
from mandate.db import decisions as q
from mandate.db import governance as gq
from mandate.errors import MandateError
from mandate.evaluator.verdicts import SEVERITY
from mandate.replay import MIN_ID_PREFIX, shared_prefix_range
from mandate.vocabulary import STAGES, Row, is_slug
from mandate.web.access import principal, restrict, visible_rows
from mandate.web.inputs import EARLIEST, LATEST

Conn = AsyncConnection[Row]

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
ALL_DOMAINS = "*"
VERDICTS = tuple(v.value for v in sorted(SEVERITY, key=SEVERITY.__getitem__, reverse=True))  # most severe first
TEXT_FILTERS = ("intent", "service", "agent", "actor", "target")  # match any part of the value, any case
NAME_FILTERS = ("policy_id", "spec_id", "scope_id", "owning_team")  # exact names, as the links carry them
FILTERS = ("verdict", "stage", *TEXT_FILTERS, *NAME_FILTERS, "since", "until")
SHOWN_MATCHES = 20
PAGE_SIZES = (25, 50, 100, 200, 500)
DEFAULT_LIMIT = 50
MAX_TEXT = 2048
EXPORT_PAGE = 1000
COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


# -- rendering ---------------------------------------------------------------------------------------------------


def show_value(value: object) -> str:
    """A stored JSON value as policies are written: strings bare, JSON spelling for the rest."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + ", ".join(show_value(item) for item in value) + "]"
    return orjson.dumps(value).decode()


_BREAK_AFTER = re.compile(r"([./@_:])")


def breakable(value: object) -> Markup:
    """Escaped text with line-break opportunities after `.`, `/`, `@`, `_` and `:` (long scope ids, paths)."""
    return Markup(_BREAK_AFTER.sub(r"\1<wbr>", str(escape(str(value)))))


def relative(moment: datetime | str | None, now: datetime) -> str:
    """How far `moment` lies from `now`, as a person says it, to the minute: `in 1 h 12 min`, `2 d 3 h ago`."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    seconds = (moment - now).total_seconds()
    days, minutes = divmod(int(abs(seconds) // 60), 1440)
    hours, minutes = divmod(minutes, 60)
    units = [(days, "d"), (hours, "h"), (minutes, "min")]
    first = next((i for i, (n, _) in enumerate(units) if n), None)
    span = "less than 1 min" if first is None else " ".join(f"{n} {u}" for n, u in units[first : first + 2] if n)
    return f"in {span}" if seconds >= 0 else f"{span} ago"


def pretty_json(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS).decode()


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        auto_reload=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["value"] = show_value
    env.filters["json"] = pretty_json
    env.filters["breakable"] = breakable
    env.filters["relative"] = relative
    env.globals.update(version=mandate.__version__, verdicts=VERDICTS, stages=STAGES)
    return env


TEMPLATES = _environment()


@dataclass(frozen=True)
class Clock:
    """Shows instants in the user's time zone."""

    zone: tzinfo
    name: str

    def at(self, value: datetime | str | None, seconds: bool = True) -> str:
        if value is None:
            return "—"
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    def iso(self, value: datetime | str | None) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.astimezone(UTC).isoformat()


UTC_CLOCK = Clock(UTC, "UTC")


def link(path: str, params: Mapping[str, str | None]) -> str:
    kept = {k: v for k, v in params.items() if v}
    return path + ("?" + urlencode(kept) if kept else "")


def url(path: str, params: Mapping[str, str | None] | None = None, **overrides: str | None) -> str:
    """`path` with `params`, some replaced (None drops one): templates build every link with it."""
    return link(path, {**(params or {}), **overrides})


def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with the security headers every UI page carries (no inline script or style)."""
    place, clock = context.get("place"), context.get("clock", UTC_CLOCK)
    nav_params = place.params() if isinstance(place, Place) else {}
    nav_params["tz"] = None if clock is UTC_CLOCK else clock.name
    context.setdefault("nav_params", nav_params)
    context.setdefault("clock", clock)
    context.setdefault("problems", [])
    html = TEMPLATES.get_template(template).render(url=url, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


# -- parameters --------------------------------------------------------------------------------------------------


@dataclass
class Problems:
    """What is wrong with the query string, as sentences that say what to do."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, message: str) -> None:
        self.items.append((name, message))

    def __bool__(self) -> bool:
        return bool(self.items)


def _param(request: Request, name: str) -> str | None:
    """The first value of `name`, stripped; blank (as a GET form sends an empty field) means absent."""
    value = request.query_params.get(name)
    value = value.strip() if value is not None else None
    return value or None


def _clock(request: Request, problems: Problems) -> Clock:
    name = _param(request, "tz") or "UTC"
    if name.upper() == "UTC":
        return UTC_CLOCK
    try:
        if len(name) > 64:
            raise ValueError(name)
        return Clock(ZoneInfo(name), name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.add("tz", f"time zone {name[:64]!r} is unknown: use an IANA name such as UTC or Europe/Paris")
        return UTC_CLOCK


@dataclass
class Place:
    """Where the user looks: the organization and domain (None with `all_domains`: every domain, picked)."""

    organizations: list[Row]
    organization: Row | None = None
    domains: list[Row] = field(default_factory=list)
    domain: str | None = None
    all_domains: bool = False

    @property
    def organization_id(self) -> UUID | None:
        return None if self.organization is None else UUID(str(self.organization["organization_id"]))

    @property
    def ready(self) -> bool:
        return self.organization is not None and (self.domain is not None or self.all_domains)

    def params(self) -> dict[str, str | None]:
        """The explicit query parameters for links, so a shared link shows exactly this place."""
        return {
            "organization_id": None if self.organization is None else str(self.organization["organization_id"]),
            "domain": ALL_DOMAINS if self.all_domains else self.domain,
        }


async def _place(conn: Conn, request: Request, problems: Problems, *, default_domain: bool = True) -> Place:
    """Only what the token may see: its organization, its domains (web/access.py)."""
    who = principal(request)
    place = Place([o for o in await gq.list_organizations(conn) if who.sees_organization(o["organization_id"])])
    text = _param(request, "organization_id")
    if text is not None:
        try:
            wanted = UUID(text)
        except ValueError:
            problems.add("organization_id", f"organization_id {text[:64]!r} is not a UUID; pick one from the list")
            return place
        place.organization = next((o for o in place.organizations if o["organization_id"] == wanted), None)
        if place.organization is None:
            problems.add("organization_id", f"organization {wanted} does not exist; pick one from the list")
            return place
    elif len(place.organizations) == 1:
        place.organization = place.organizations[0]
    if place.organization_id is None:
        return place
    place.domains = visible_rows(request, await gq.list_domains(conn, place.organization_id))
    names = [d["domain"] for d in place.domains]
    domain = _param(request, "domain") or _param(request, "domain_name")
    if domain == ALL_DOMAINS:
        place.all_domains = True
    elif domain is not None:
        if not is_slug(domain) or domain not in names:
            shown = domain[:64]
            problems.add("domain", f"domain {shown!r} does not exist here; choose one of: {', '.join(names) or 'none'}")
        else:
            place.domain = domain
    elif default_domain and names:
        place.domain = names[0]
    return place


@dataclass
class Form:
    """The decisions filter as typed (to refill the form) and as parsed."""

    values: dict[str, str]
    filter: q.DecisionFilter
    limit: int
    cursor: q.Cursor | None
    before: q.Cursor | None = None


def _time(request: Request, name: str, clock: Clock, problems: Problems) -> datetime | None:
    text = _param(request, name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        problems.add(name, f"{name} {text[:64]!r} is not a date and time: use YYYY-MM-DDTHH:MM (in {clock.name})")
        return None
    value = value if value.tzinfo is not None else value.replace(tzinfo=clock.zone)
    try:
        in_range = EARLIEST <= value.astimezone(UTC) < LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        problems.add(name, f"{name} must lie between 1970-01-01 and 9999-12-30 (UTC)")
        return None
    return value


def _form(request: Request, place: Place, clock: Clock, problems: Problems, *, paging: bool = True) -> Form:
    """Parse the filter; `paging=False` (exports) ignores `limit` and `cursor`."""
    values = {name: _param(request, name) or "" for name in FILTERS}
    values["tz"] = _param(request, "tz") or clock.name  # as typed, so a wrong zone can be corrected
    verdict = values["verdict"].upper() or None
    if verdict is not None and verdict not in VERDICTS:
        problems.add("verdict", f"verdict {values['verdict'][:64]!r} is not one of {', '.join(VERDICTS)}")
        verdict = None
    stage = values["stage"] or None
    if stage is not None and stage not in STAGES:
        problems.add("stage", f"stage {stage[:64]!r} is not one of {', '.join(STAGES)}")
        stage = None
    for name in (*TEXT_FILTERS, *NAME_FILTERS):
        if len(values[name]) > MAX_TEXT:
            problems.add(name, f"{name} is longer than {MAX_TEXT} characters")
            values[name] = values[name][:MAX_TEXT]
    since = _time(request, "since", clock, problems)
    until = _time(request, "until", clock, problems)
    if since is not None and until is not None and until <= since:
        problems.add("until", "until must be later than since")
    limit_text = (_param(request, "limit") if paging else None) or str(DEFAULT_LIMIT)
    limit = int(limit_text) if limit_text.isdigit() else 0
    if not 1 <= limit <= max(PAGE_SIZES):
        problems.add("limit", f"limit must be a number from 1 to {max(PAGE_SIZES)}")
        limit = DEFAULT_LIMIT
    values["limit"] = str(limit)
    cursor = _cursor(request, "cursor", problems) if paging else None
    before = _cursor(request, "before", problems) if paging and cursor is None else None
    text = {name: values[name] or None for name in (*TEXT_FILTERS, *NAME_FILTERS)}
    f = restrict(
        request,
        q.DecisionFilter(
            organization_id=place.organization_id,
            domain=place.domain,
            verdict=verdict,
            stage=stage,
            since=since,
            until=until,
            intent=text["intent"],
            service=text["service"],
            agent=text["agent"],
            actor=text["actor"],
            target=text["target"],
            policy_id=text["policy_id"],
            spec_id=text["spec_id"],
            scope_id=text["scope_id"],
            owning_team=text["owning_team"],
            partial=True,
        ),
    )
    values["verdict"] = verdict or ""
    return Form(values, f, limit, cursor, before)


def _cursor(request: Request, name: str, problems: Problems) -> q.Cursor | None:
    text = _param(request, name)
    if text is None:
        return None
    try:
        return q.Cursor.decode(text[:512])
    except q.BadCursor:
        problems.add(
            name, "this page link is not valid (edited or from another server): start again from the first page"
        )
        return None


def _filter_params(place: Place, form: Form) -> dict[str, str | None]:
    """The query string of the current view (without cursor): links, pagination and export use it."""
    params = place.params()
    params.update({k: v for k, v in form.values.items() if k != "limit"})
    if params.get("tz") == "UTC":
        params["tz"] = None
    if form.limit != DEFAULT_LIMIT:
        params["limit"] = str(form.limit)
    return params


def _has_filters(form: Form) -> bool:
    return any(form.values[name] for name in FILTERS)


# -- decisions ---------------------------------------------------------------------------------------------------


def decision_url(row: Row, params: Mapping[str, str | None]) -> str:
    """The detail page of a listed decision stage, in the row's own domain, keeping the organization and zone."""
    where = {"organization_id": params.get("organization_id"), "domain": row["domain"], "tz": params.get("tz")}
    return link(f"/decisions/{row['decision_id']}", where) + (f"#stage-{row['stage']}" if row.get("stage") else "")


def local_input(value: datetime, clock: Clock) -> str:
    """An instant as a `datetime-local` value on the user's clock (what the since/until fields hold)."""
    return value.astimezone(clock.zone).strftime("%Y-%m-%dT%H:%M")


async def find_decisions(conn: Conn, request: Request, typed: str, place: Place, problems: Problems) -> list[Row]:
    """The decisions this token may see whose id starts with `typed` (a whole id, or at least MIN_ID_PREFIX hex
    digits, hyphens ignored), at most SHOWN_MATCHES; a problem when `typed` is not such a prefix or none matches.
    The range query is the CLI's (`replay.prefix_range`, `decisions.decision_ids_between`)."""
    try:
        low, high = shared_prefix_range(typed)
    except MandateError:
        problems.add("id", f"{typed[:64]!r} is not a decision id: type its first {MIN_ID_PREFIX} or more hex digits")
        return []
    found: list[Row] = []
    for key in await q.decision_ids_between(conn, low, high, limit=SHOWN_MATCHES * 4):
        rows = [
            r
            for r in visible_rows(request, await q.get_decision(conn, key), decisions=True)
            if place.organization_id is None or r["organization_id"] == place.organization_id
        ]
        if rows:
            found.append({**rows[-1], "stage": None})
        if len(found) == SHOWN_MATCHES:
            break
    if not found:
        problems.add("id", f"no decision id starts with {typed[:64]!r} here")
    return found


def here(place: Place, clock: Clock) -> dict[str, str | None]:
    return {**place.params(), "tz": None if clock is UTC_CLOCK else clock.name}


def not_found(message: str, hint: str, clock: Clock = UTC_CLOCK) -> HTMLResponse:
    return page("message.html", 404, nav="", clock=clock, title="Not found", message=message, hint=hint)


def governance_links(params: Mapping[str, str | None]) -> dict[str, Any]:
    """The link builders templates use for names (policy, scope, snapshot, a filtered list), in one place."""
    return {
        "policy_url": lambda policy_id: link(f"/policies/{quote(str(policy_id), safe='')}", params),
        "scope_url": lambda scope_id: link(f"/scopes/{quote(str(scope_id), safe='')}", params),
        "snapshot_url": lambda snapshot_id: f"/api/policy-snapshots/{snapshot_id}/policies",
        "filter_url": lambda **names: link("/", {**params, **names}),
    }
