"""The read-only web UI (RFC-003): server-rendered pages over the same query functions as the JSON API.

    GET /                           decisions: filters in the URL, keyset pages, counts per verdict, verdicts over time
    GET /decisions/{decision_id}    one decision: header, timeline, the stored explanation, spec and policy panels,
                                    its approval requests with their history, the approvals it resumed with, findings
    GET /scopes                     the scopes of a domain as a hierarchy, with owning teams
    GET /specs                      spec versions and their status history
    GET /migrations                 the migration log
    GET /export.csv, /export.json   the decisions of the current filter (same query string as `/`), streamed

Every route is a GET and only reads. Pages render what is stored — verdicts, explanations, summaries — and never
re-evaluate a policy. The one derived view, the scope hierarchy, comes from the evaluator's own `ScopeIndex` (the
function ingestion resolves scopes with), so the tree shows exactly the ancestors whose policies apply.

Where the user looks is explicit. The organization is fixed when there is one and chosen otherwise (never
inferred); the domain is the first one of the organization unless the URL names another — another domain's rows
appear only when the user picks that domain, or `*` (all domains). Times are shown, and `datetime-local` inputs
read, in the time zone `tz` (an IANA name, default UTC). Bad parameters give a page that says what to fix (400).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
import orjson
import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from markupsafe import Markup, escape
from psycopg import AsyncConnection

import mandate
from mandate import approval_workflow as workflow
from mandate.approvals.state import Approval
from mandate.db import approvals as aq
from mandate.db import decisions as q
from mandate.db import governance as gq
from mandate.errors import MandateError
from mandate.evaluator import ScopeIndex
from mandate.governance.records import scope_from_record
from mandate.migrate.files import head_version
from mandate.replay import MIN_ID_PREFIX, prefix_range
from mandate.service import Problem, stored_flips
from mandate.vocabulary import STAGES, Row, is_slug
from mandate.web.access import principal, restrict, visible_rows
from mandate.web.aggregates import AGGREGATE_TIMEOUT, CAP, Aggregates, aggregate
from mandate.web.api import state
from mandate.web.errors import JSONResponse, error_body
from mandate.web.inputs import EARLIEST, LATEST, check_parameters

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_parameters)])
Conn = AsyncConnection[Row]

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
ALL_DOMAINS = "*"
VERDICTS = ("BLOCK", "PAUSE", "ALLOW", "OBSERVE")  # most severe first
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
CSV_COLUMNS = (
    "timestamp",
    "decision_id",
    "stage",
    "organization_id",
    "domain",
    "intent",
    "actor",
    "target",
    "service",
    "agent",
    "environment",
    "system",
    "tenant",
    "verdict",
    "summary",
    "spec_id",
    "spec_version",
    "scope_id",
    "owning_team",
    "snapshot_id",
    "snapshot_version",
    "matched_policy_ids",
    "verdict_id",
    "created_at",
)
ATTRIBUTION_COLUMNS = frozenset({"service", "agent", "environment", "system", "tenant"})
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_BUCKET_LABEL = {
    "minute": "%m-%d %H:%M",
    "hour": "%m-%d %H:00",
    "day": "%Y-%m-%d",
    "week": "wk %Y-%m-%d",
    "month": "%Y-%m",
    "year": "%Y",
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


@dataclass
class Bar:
    x: float
    width: float
    label: str
    total: int
    segments: list[tuple[str, float, float, int]]  # verdict, y, height, n (bottom: least severe)
    start: datetime | None = None
    end: datetime | None = None  # exclusive
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Chart:
    """Stacked bars in a 1000 x 100 box the page stretches to its width; labels are HTML beside it."""

    unit: str
    peak: int
    bars: list[Bar] = field(default_factory=list)
    width: int = 1000
    height: int = 100

    @property
    def labels(self) -> list[str]:
        """The first, middle and last bucket's labels, for the x axis."""
        if not self.bars:
            return []
        picks = sorted({0, (len(self.bars) - 1) // 2, len(self.bars) - 1})
        return [self.bars[i].label for i in picks]


async def _aggregates(
    conn: Conn, f: q.DecisionFilter, clock: Clock, breakdowns: tuple[str, ...] = ()
) -> tuple[Aggregates, Chart | None, str | None]:
    """The filter's aggregates (web/aggregates.py), its chart, and the note to show when they are not complete."""
    try:
        found = await aggregate(conn, f, time_zone=clock.name, zone=clock.zone, breakdowns=breakdowns)
    except (psycopg.errors.QueryCanceled, psycopg.errors.InvalidParameterValue) as exc:
        note = (
            f"Counts and the chart took longer than {AGGREGATE_TIMEOUT} for this filter; narrow the time range."
            if isinstance(exc, psycopg.errors.QueryCanceled)
            else f"The database does not know the time zone {clock.name}; counts and the chart are not shown."
        )
        return Aggregates(), None, note
    if found.capped:
        note = (
            f"More than {CAP:,} decisions match this search: counts and the chart are shown up to {CAP:,}. "
            "Narrow it (a longer start of the actor or target, a time range, or one name filter)."
        )
        return found, None, note
    chart = _chart(found.chart_rows, found.unit, clock) if found.chart_rows is not None else None
    return found, chart, None


def _chart(rows: list[Row], unit: str, clock: Clock) -> Chart:
    """The bars of `verdicts_over_time` rows, each with its bucket's start and end (to link to its decisions)."""
    buckets: dict[datetime, dict[str, int]] = {}
    ends: dict[datetime, datetime] = {}
    for r in rows:
        per = buckets.setdefault(r["bucket"], {})
        ends[r["bucket"]] = r["bucket_end"]
        if r["verdict"] is not None:
            per[r["verdict"]] = r["n"]
    chart = Chart(unit, max((sum(v.values()) for v in buckets.values()), default=0))
    slot = chart.width / max(len(buckets), 1)
    scale = chart.height / max(chart.peak, 1)
    for i, (bucket, per) in enumerate(buckets.items()):
        y = float(chart.height)
        segments = []
        for verdict in reversed(VERDICTS):
            if n := per.get(verdict, 0):
                y -= n * scale
                segments.append((verdict, round(y, 3), round(n * scale, 3), n))
        label = bucket.astimezone(clock.zone).strftime(_BUCKET_LABEL[unit])
        x, width = round(i * slot + slot * 0.12, 3), round(slot * 0.76, 3)
        chart.bars.append(Bar(x, width, label, sum(per.values()), segments, bucket, ends[bucket], per))
    return chart


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def decisions_page(request: Request) -> Response:
    problems = Problems()
    clock = _clock(request, problems)
    base: dict[str, Any] = {"nav": "decisions", "clock": clock, "zones": COMMON_ZONES, "page_sizes": PAGE_SIZES}
    base.update(matches=None, request_id=_param(request, "id"), names=Names())
    async with state(request).pool.connection() as conn:
        place = await _place(conn, request, problems)
        form = _form(request, place, clock, problems)
        base.update(place=place, form=form, problems=problems.items, base_url=str(request.base_url))
        base.update(decision_url=lambda row: decision_url(row, _filter_params(place, form)))
        if place.organization_id is not None:
            base.update(names=await governance_names(conn, request, place))
        if problems or not place.ready:
            return page("decisions.html", 400 if problems else 200, **base, listing=None)
        typed = _param(request, "id")
        if typed is not None:
            found = await find_decisions(conn, request, typed, place, problems)
            if len(found) == 1:
                return RedirectResponse(decision_url(found[0], _filter_params(place, form)), status_code=303)
            if problems or found:
                base.update(problems=problems.items, matches=found)
                return page("decisions.html", 400 if problems else 200, **base, listing=None)
        listing = await q.list_decisions(conn, form.filter, limit=form.limit, cursor=form.cursor, before=form.before)
        found, chart, note = await _aggregates(conn, form.filter, clock)
    params = _filter_params(place, form)
    return page(
        "decisions.html",
        **base,
        listing=listing,
        counts=found.counts,
        total=sum(found.counts.values()),
        capped=found.capped,
        chart=chart,
        aggregate_note=note,
        params=params,
        has_filters=_has_filters(form),
        first_url=link("/", params) if form.cursor is not None or form.before is not None else None,
        previous_url=link("/", {**params, "before": listing.previous_cursor}) if listing.previous_cursor else None,
        next_url=link("/", {**params, "cursor": listing.next_cursor}) if listing.next_cursor else None,
        bar_url=lambda bar: bar_url(bar, params, clock),
        export_csv=link("/export.csv", params),
        export_json=link("/export.json", params),
    )


@dataclass
class Names:
    """What the name filters can hold in the current place (suggestions for their inputs)."""

    policies: list[str] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    specs: list[str] = field(default_factory=list)


async def governance_names(conn: Conn, request: Request, place: Place) -> Names:
    """The policy ids (of each domain's newest snapshot), owning teams, scope ids and spec ids of the place."""
    assert place.organization_id is not None
    scopes = visible_rows(request, await gq.list_scopes(conn, place.organization_id, place.domain))
    specs = visible_rows(request, await gq.list_specs(conn, place.organization_id, place.domain))
    newest: dict[str, Row] = {}
    for snap in visible_rows(request, await gq.list_snapshots(conn, place.organization_id, place.domain)):
        newest.setdefault(snap["domain"], snap)  # listed newest first per domain
    policies: set[str] = set()
    for snap in newest.values():
        stored = await gq.get_snapshot(conn, snap["snapshot_id"])
        policies.update(str(p.get("id")) for p in (stored or {}).get("policies") or [] if p.get("id"))
    return Names(
        policies=sorted(policies),
        teams=sorted({s["owning_team"] for s in scopes if s["owning_team"]}),
        scopes=sorted({s["scope_id"] for s in scopes}),
        specs=sorted({s["spec_id"] for s in specs}),
    )


def decision_url(row: Row, params: Mapping[str, str | None]) -> str:
    """The detail page of a listed decision stage, in the row's own domain, keeping the organization and zone."""
    where = {"organization_id": params.get("organization_id"), "domain": row["domain"], "tz": params.get("tz")}
    return link(f"/decisions/{row['decision_id']}", where) + (f"#stage-{row['stage']}" if row.get("stage") else "")


def local_input(value: datetime, clock: Clock) -> str:
    """An instant as a `datetime-local` value on the user's clock (what the since/until fields hold)."""
    return value.astimezone(clock.zone).strftime("%Y-%m-%dT%H:%M")


def bar_url(bar: Bar, params: Mapping[str, str | None], clock: Clock, path: str = "/") -> str:
    """The decisions of one bar: the current filter narrowed to the bar's bucket."""
    if bar.start is None or bar.end is None:
        return link(path, params)
    return link(path, {**params, "since": local_input(bar.start, clock), "until": local_input(bar.end, clock)})


async def find_decisions(conn: Conn, request: Request, typed: str, place: Place, problems: Problems) -> list[Row]:
    """The decisions this token may see whose id starts with `typed` (a whole id, or at least MIN_ID_PREFIX hex
    digits, hyphens ignored), at most SHOWN_MATCHES; a problem when `typed` is not such a prefix or none matches.
    The range query is the CLI's (`replay.prefix_range`, `decisions.decision_ids_between`)."""
    digits = typed.strip().lower().replace("-", "")
    try:
        if len(digits) < MIN_ID_PREFIX:
            raise MandateError(typed)
        low, high = prefix_range(typed)
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


# -- export ------------------------------------------------------------------------------------------------------


async def _export_filter(request: Request) -> tuple[Place, Form] | Response:
    problems = Problems()
    clock = _clock(request, problems)
    async with state(request).pool.connection() as conn:
        place = await _place(conn, request, problems)
    form = _form(request, place, clock, problems, paging=False)
    if not problems and place.organization is None:
        problems.add("organization_id", "choose an organization: organization_id is required when several exist")
    elif not problems and not place.ready:
        problems.add("domain", "the organization has no domain yet: there is nothing to export")
    if problems:
        body = error_body(
            "invalid_request",
            "the export filter is invalid; fix it on the decisions page",
            [Problem(name, "invalid", message) for name, message in problems.items],
        )
        return JSONResponse(body, status_code=400)
    return place, form


async def _export_pages(request: Request, f: q.DecisionFilter) -> AsyncIterator[list[Row]]:
    """Every decision of the filter, page by page, from one read-only snapshot of the database."""
    async with state(request).pool.connection() as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor: q.Cursor | None = None
        while True:
            result = await q.list_decisions(conn, f, limit=EXPORT_PAGE, cursor=cursor)
            # Through JSON, exactly as the API serialises its items.
            yield orjson.loads(orjson.dumps(result.items, option=orjson.OPT_NON_STR_KEYS))
            if result.next_cursor is None:
                return
            cursor = q.Cursor.decode(result.next_cursor)


def _export_name(place: Place, extension: str) -> str:
    where = "all-domains" if place.all_domains else place.domain
    return f"mandate-decisions-{where}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.{extension}"


def _filter_description(place: Place, form: Form) -> Row:
    f = form.filter
    return {
        "organization_id": str(f.organization_id),
        "domain": f.domain,
        "verdict": f.verdict,
        "intent": f.intent,
        "stage": f.stage,
        "service": f.service,
        "agent": f.agent,
        "actor": f.actor,
        "target": f.target,
        "since": None if f.since is None else f.since.isoformat(),
        "until": None if f.until is None else f.until.isoformat(),
    }


@router.get("/export.json")
async def export_json(request: Request) -> Response:
    """`{"filter": {...}, "items": [...], "count": n}`; items exactly as `GET /api/decisions` lists them."""
    parsed = await _export_filter(request)
    if isinstance(parsed, Response):
        return parsed
    place, form = parsed

    async def body() -> AsyncIterator[bytes]:
        yield b'{"filter":' + orjson.dumps(_filter_description(place, form)) + b',"items":['
        count = 0
        async for items in _export_pages(request, form.filter):
            for item in items:
                yield (b"," if count else b"") + orjson.dumps(item)
                count += 1
        yield b'],"count":' + str(count).encode() + b"}"

    return StreamingResponse(
        body(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{_export_name(place, "json")}"'},
    )


def csv_row(item: Row) -> list[str]:
    """One decision as CSV cells: attribution fields as columns, lists joined with ';', null as empty."""
    cells = []
    for name in CSV_COLUMNS:
        value = (item.get("attribution") or {}).get(name) if name in ATTRIBUTION_COLUMNS else item.get(name)
        if value is None:
            cells.append("")
        elif isinstance(value, list):
            cells.append(";".join(str(v) for v in value))
        else:
            cells.append(str(value))
    return cells


@router.get("/export.csv")
async def export_csv(request: Request) -> Response:
    """One row per decision stage, columns CSV_COLUMNS, values verbatim (an audit export alters nothing)."""
    parsed = await _export_filter(request)
    if isinstance(parsed, Response):
        return parsed
    place, form = parsed

    async def body() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        async for items in _export_pages(request, form.filter):
            writer.writerows(csv_row(item) for item in items)
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode()

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_export_name(place, "csv")}"'},
    )


# -- one decision ------------------------------------------------------------------------------------------------


@dataclass
class StageView:
    """One stage of a decision with its verdict, explanation and the governance it was evaluated under."""

    decision: Row
    verdict: Row | None
    explanation: Row | None
    spec: Row | None
    snapshot: Row | None
    policies: list[Row]
    scope: Row | None
    flips: list[dict[str, object]] = field(default_factory=list)  # what would give another verdict

    @property
    def ordered_policies(self) -> list[Row]:
        """Candidates as stored, shown winner first, then the other matches (display order only)."""
        e = self.explanation or {}
        winner = e.get("winning_policy_id")
        rank = {True: 1, False: 2}
        return sorted(
            e.get("policies") or [], key=lambda p: 0 if p["policy_id"] == winner else rank[bool(p.get("matched"))]
        )

    @property
    def winner(self) -> Row | None:
        e = self.explanation or {}
        return next((p for p in e.get("policies") or [] if p["policy_id"] == e.get("winning_policy_id")), None)


def here(place: Place, clock: Clock) -> dict[str, str | None]:
    return {**place.params(), "tz": None if clock is UTC_CLOCK else clock.name}


def not_found(message: str, hint: str, clock: Clock = UTC_CLOCK) -> HTMLResponse:
    return page("message.html", 404, nav="", clock=clock, title="Not found", message=message, hint=hint)


@router.api_route("/decisions/{decision_id}", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def decision_page(request: Request, decision_id: str) -> Response:
    problems = Problems()
    clock = _clock(request, problems)
    try:
        key = UUID(decision_id)
    except ValueError:
        key = None
    async with state(request).pool.connection() as conn:
        place = await _place(conn, request, problems, default_domain=False)
        if key is None and not problems:
            # The short id the list and the demo show (or any unique prefix): go to the whole id's page.
            typo = Problems()
            found = await find_decisions(conn, request, decision_id, place, typo)
            if len(found) == 1:
                return RedirectResponse(decision_url(found[0], here(place, clock)), status_code=307)
            if not found:
                not_hex = typo.items[0][1].endswith("hex digits")
                return not_found(
                    f"{decision_id[:80]!r} is not a decision id."
                    if not_hex
                    else f"No decision id starts with {decision_id[:80]!r}.",
                    f"Decision ids are UUIDs, such as 8f14e45f-ceea-467f-a0f6-7d3c1b2a9e01; their first "
                    f"{MIN_ID_PREFIX} or more characters are enough. Find one on the decisions page.",
                    clock,
                )
            return page(
                "matches.html",
                nav="decisions",
                clock=clock,
                place=place,
                typed=decision_id,
                matches=found,
                decision_url=lambda row: decision_url(row, here(place, clock)),
            )
        if problems:
            return page(
                "message.html",
                400,
                nav="",
                clock=clock,
                title="Bad link",
                message="This link is not valid.",
                hint="; ".join(m for _, m in problems.items),
            )
        assert key is not None  # a prefix was answered above
        rows = [
            r
            for r in visible_rows(request, await q.get_decision(conn, key), decisions=True)
            if (place.organization_id is None or r["organization_id"] == place.organization_id)
            and (place.domain is None or r["domain"] == place.domain)
        ]
        if not rows:
            where = f" in domain {place.domain}" if place.domain else ""
            return not_found(
                f"Decision {key} does not exist{where}.",
                "Check the id, or look for the decision on the decisions page (with the right domain selected).",
                clock,
            )
        org, domain = rows[-1]["organization_id"], rows[-1]["domain"]
        verdicts = await q.get_verdicts(conn, key)
        timeline = await q.get_timeline(conn, key)
        scopes = {s["scope_id"]: s for s in await gq.list_scopes(conn, org, domain)}
        specs: dict[tuple[str, str], Row] = {}
        snapshots: dict[UUID, Row | None] = {}
        stages = []
        for row in rows:
            verdict = next((v for v in reversed(verdicts) if v["stage"] == row["stage"]), None)
            if row["spec_id"] and (row["spec_id"], row["spec_version"]) not in specs:
                for v in await gq.get_spec_versions(conn, row["spec_id"], org):
                    specs[(v["spec_id"], v["version"])] = v
            snapshot_id = verdict["snapshot_id"] if verdict else None
            if snapshot_id is not None and snapshot_id not in snapshots:
                snapshots[snapshot_id] = await gq.get_snapshot(conn, snapshot_id)
            snapshot = snapshots.get(snapshot_id) if snapshot_id else None
            policies = [p for p in (snapshot or {}).get("policies") or [] if p.get("spec_id") == row["spec_id"]]
            stages.append(
                StageView(
                    decision=row,
                    verdict=verdict,
                    explanation=verdict["explanation"] if verdict else None,
                    spec=specs.get((row["spec_id"], row["spec_version"])),
                    snapshot=snapshot,
                    policies=policies,
                    scope=scopes.get(verdict["scope_id"]) if verdict and verdict["scope_id"] else None,
                    flips=stored_flips(state(request).governance, verdict) if verdict else [],
                )
            )
        approvals, findings = await decision_approvals(conn, request, rows[-1], stages)
    now = datetime.now(UTC)
    place_params = {"organization_id": str(org), "domain": domain, "tz": None if clock is UTC_CLOCK else clock.name}
    return page(
        "decision.html",
        nav="decisions",
        clock=clock,
        decision_id=str(key),
        latest=stages[-1],
        stages=stages,
        timeline=timeline,
        back_url=link("/", place_params),
        specs_url=link("/specs", place_params),
        scopes_url=link("/scopes", place_params),
        approvals=[a.to_dict(now) for a in approvals],
        findings=findings,
        now=now,
        stage_url=lambda decision_id, where, stage: decision_url(
            {"decision_id": decision_id, "domain": where, "stage": stage}, place_params
        ),
        **governance_links(place_params),
    )


async def decision_approvals(
    conn: Conn, request: Request, decision: Row, stages: list[StageView]
) -> tuple[list[Approval], list[Row]]:
    """The approval requests of a decision's PAUSEd stages, then those its resumes presented (each explanation's
    `approval` section) that the token may see, and the decision's findings."""
    own = await aq.of_decision(conn, decision["decision_id"])
    known = {a.approval_id for a in own}
    presented: list[UUID] = []
    for s in stages:
        section = (s.explanation or {}).get("approval")
        if not isinstance(section, Mapping):
            continue
        try:
            key = UUID(str(section.get("approval_id")))
        except ValueError:
            continue
        if key not in known:
            known.add(key)
            presented.append(key)
    p = principal(request)
    approvals = [a for a in [*own, *await aq.get_many(conn, presented)] if workflow.visible(p, a)]
    findings, _ = await aq.list_findings(
        conn,
        organization_id=decision["organization_id"],
        domains=None,
        domain=decision["domain"],
        decision_id=decision["decision_id"],
        token_id=p.own_decisions_only,
        limit=max(PAGE_SIZES),
        cursor=None,
    )
    return approvals, findings


def governance_links(params: Mapping[str, str | None]) -> dict[str, Any]:
    """The link builders templates use for names (policy, scope, snapshot, a filtered list), in one place."""
    return {
        "policy_url": lambda policy_id: link(f"/policies/{quote(str(policy_id), safe='')}", params),
        "scope_url": lambda scope_id: link(f"/scopes/{quote(str(scope_id), safe='')}", params),
        "snapshot_url": lambda snapshot_id: f"/api/policy-snapshots/{snapshot_id}/policies",
        "filter_url": lambda **names: link("/", {**params, **names}),
    }


# -- governance --------------------------------------------------------------------------------------------------


@dataclass
class ScopeNode:
    row: Row
    depth: int
    selectors: dict[str, str]
    parent: str | None


def scope_tree(rows: Iterable[Row]) -> list[ScopeNode]:
    """Scopes in hierarchy order (each after its parent). A scope's parent is its most specific ancestor as the
    evaluator's ScopeIndex resolves it — the scopes whose policies also apply to decisions it holds authority over."""
    rows = list(rows)
    by_id = {r["scope_id"]: r for r in rows}
    scopes = {r["scope_id"]: scope_from_record(r) for r in rows}
    index = ScopeIndex(scopes.values())
    parent: dict[str, str | None] = {}
    for scope_id, scope in scopes.items():
        resolution = index.resolve_attribution(scope.organization_id, scope.domain, scope.selectors)
        ancestors = [a.scope_id for a in resolution.ancestors] if resolution else []
        parent[scope_id] = ancestors[0] if ancestors else None
    children: dict[str | None, list[str]] = {}
    for scope_id in sorted(scopes, key=lambda s: (by_id[s]["domain"], s)):
        children.setdefault(parent[scope_id], []).append(scope_id)
    out: list[ScopeNode] = []

    def visit(scope_id: str, depth: int) -> None:
        out.append(ScopeNode(by_id[scope_id], depth, scopes[scope_id].selectors, parent[scope_id]))
        for child in children.get(scope_id, []):
            visit(child, depth + 1)

    for root in children.get(None, []):
        visit(root, 0)
    return out


async def _governance_page(request: Request, nav: str) -> tuple[Place, Problems, dict[str, Any]]:
    problems = Problems()
    clock = _clock(request, problems)
    async with state(request).pool.connection() as conn:
        place = await _place(conn, request, problems)
    context = {"nav": nav, "clock": clock, "place": place, "problems": problems.items}
    return place, problems, context


@router.api_route("/scopes", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def scopes_page(request: Request) -> HTMLResponse:
    place, problems, context = await _governance_page(request, "scopes")
    if problems or not place.ready or place.organization_id is None:
        return page("scopes.html", 400 if problems else 200, **context, nodes=None)
    async with state(request).pool.connection() as conn:
        rows = visible_rows(request, await gq.list_scopes(conn, place.organization_id, place.domain))
    return page("scopes.html", **context, nodes=scope_tree(rows))


@router.api_route("/specs", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def specs_page(request: Request) -> HTMLResponse:
    place, problems, context = await _governance_page(request, "specs")
    if problems or not place.ready or place.organization_id is None:
        return page("specs.html", 400 if problems else 200, **context, specs=None)
    async with state(request).pool.connection() as conn:
        versions = visible_rows(request, await gq.list_specs(conn, place.organization_id, place.domain))
        events = await gq.list_spec_status_events(conn, place.organization_id, place.domain)
    specs: dict[str, Row] = {}
    for v in versions:
        entry = specs.setdefault(
            v["spec_id"], {"spec_id": v["spec_id"], "domain": v["domain"], "versions": [], "history": []}
        )
        entry["versions"].append(v)
    for e in events:
        if e["spec_id"] in specs:
            specs[e["spec_id"]]["history"].append(e)
    return page("specs.html", **context, specs=list(specs.values()))


@router.api_route("/migrations", methods=["GET", "HEAD"], response_class=HTMLResponse)
async def migrations_page(request: Request) -> HTMLResponse:
    problems = Problems()
    clock = _clock(request, problems)
    async with state(request).pool.connection() as conn:
        rows = await gq.migration_log(conn)
    applied = max((r["migration_version"] for r in rows), default=0)
    return page(
        "migrations.html",
        nav="migrations",
        clock=clock,
        problems=problems.items,
        rows=rows,
        applied=applied,
        required=head_version(),
    )
